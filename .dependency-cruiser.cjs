// The direction of dependencies in src/, checked by `npm run deps` (part of `npm test`).
// Layers, bottom up: util + errors + version; wire (the tunnel and PushProx formats); auth;
// the two sides, client/ and proxy/, each with native/ and pushprox/ transports under a root
// that composes them; observability and config, which build and watch the sides; check;
// cli. A file may import from its own layer or below, never above, and never in a cycle.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      comment: 'A cycle makes two files one unit that cannot be read, tested or moved alone.',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'bottom-depends-on-nothing',
      comment: 'util, errors and version are used everywhere and so may use nothing of ours.',
      severity: 'error',
      from: { path: '^src/(util/|errors\\.ts|version\\.ts)' },
      to: { path: '^src/', pathNot: '^src/(util/|errors\\.ts|version\\.ts)' },
    },
    {
      name: 'wire-depends-on-bottom-only',
      comment: 'The wire formats are what both sides agree on: they know neither side.',
      severity: 'error',
      from: { path: '^src/wire/' },
      to: { path: '^src/', pathNot: '^src/(wire/|util/|errors\\.ts|version\\.ts)' },
    },
    {
      name: 'auth-below-the-sides',
      severity: 'error',
      from: { path: '^src/auth/' },
      to: { path: '^src/', pathNot: '^src/(auth/|wire/|util/|errors\\.ts|version\\.ts)' },
    },
    {
      name: 'client-and-proxy-apart',
      comment: 'The two ends of the tunnel meet only in wire/.',
      severity: 'error',
      from: { path: '^src/(client|proxy)/' },
      to: { path: '^src/(client|proxy)/', pathNot: '^src/$1/' },
    },
    {
      name: 'sides-below-their-users',
      comment:
        'config, observability, check and cli build and watch a side; a side never reaches up.',
      severity: 'error',
      from: { path: '^src/(client|proxy)/' },
      to: { path: '^src/(config|observability|check|cli)/|^src/index\\.ts' },
    },
    {
      name: 'transports-apart',
      comment: 'A side root composes native/ and pushprox/; neither transport knows the other.',
      severity: 'error',
      from: { path: '^src/(client|proxy)/(native|pushprox)/' },
      to: { path: '^src/$1/(native|pushprox)/', pathNot: '^src/$1/$2/' },
    },
    {
      name: 'transports-below-their-root',
      comment:
        'What a transport needs from its side lives in the side root, never in the composer.',
      severity: 'error',
      from: { path: '^src/(client|proxy)/(native|pushprox)/' },
      to: { path: '^src/(client/natprox-client|proxy/proxy-server)\\.ts$' },
    },
    {
      name: 'observability-and-config-below-the-commands',
      severity: 'error',
      from: { path: '^src/(observability|config)/' },
      to: { path: '^src/(check|cli)/|^src/index\\.ts' },
    },
    {
      name: 'check-below-cli',
      severity: 'error',
      from: { path: '^src/check/' },
      to: { path: '^src/cli/|^src/index\\.ts' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Type-only imports count: a cycle through types is still a cycle in the design.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};

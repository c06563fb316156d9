// Stands in for `pino` inside the single-file build (scripts/bundle.mjs).
// pino runs its transports in a worker thread that loads the transport module from
// node_modules by name, which a single file cannot offer. The one transport natprox uses,
// pino-pretty, works just as well as an in-process stream, so this wrapper turns
// `pino({ transport: { target: 'pino-pretty', options } })` into
// `pino(rest, pinoPretty(options))` and passes everything else through unchanged.
import realPino from 'pino';
import pinoPretty from 'pino-pretty';

export function pino(options, stream) {
  const transport = options?.transport;
  if (transport === undefined) return realPino(options, stream);
  if (transport.target !== 'pino-pretty') {
    throw new Error(
      `the single-file natprox build supports only the pino-pretty log transport, not ${JSON.stringify(transport.target ?? transport)}`,
    );
  }
  const rest = { ...options };
  delete rest.transport;
  return realPino(rest, pinoPretty({ ...transport.options, sync: true }));
}
Object.assign(pino, realPino);

export default pino;

/**
 * What one step of `natprox check` found. `fail` carries a hint (what to do); a `pass` may
 * carry one too, as a warning (a certificate about to expire). `skip` marks a step that was
 * not checked because an earlier one failed; `unused` one that does not apply (TLS for an
 * http:// proxy).
 */
export type StepStatus = 'pass' | 'fail' | 'skip' | 'unused';

export interface StepOutcome {
  step: string;
  status: StepStatus;
  detail: string;
  hint?: string | undefined;
}

export function passed(step: string, detail: string, hint?: string): StepOutcome {
  return { step, status: 'pass', detail, hint };
}

export function failed(step: string, detail: string, hint: string): StepOutcome {
  return { step, status: 'fail', detail, hint };
}

export function notChecked(step: string, why: string): StepOutcome {
  return { step, status: 'skip', detail: `not checked (${why})` };
}

export function unused(step: string, why: string): StepOutcome {
  return { step, status: 'unused', detail: why };
}

/** The step names, in the order the path is walked. */
export const STEP = {
  config: 'configuration',
  dns: 'DNS',
  tcp: 'TCP connect',
  tls: 'TLS',
  upgrade: 'tunnel upgrade',
  auth: 'authentication',
  target: (where: string) => `target ${where}`,
} as const;

/** How long each network step may take. */
export const DEFAULT_STEP_TIMEOUT_MS = 5000;

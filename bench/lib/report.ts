/** Rows of the results table, goal checks, and the printed table. */

export interface Row {
  scenario: string;
  metric: string;
  unit: string;
  /** The figure measured through natprox (null: not applicable). */
  natprox: number | null;
  /** The same figure measured directly against the target in the same run. */
  direct: number | null;
  /** natprox / direct, when both exist. */
  ratio: number | null;
  /** The goal in words, e.g. "added <= 0.3 ms". */
  goal: string;
  /** The value compared with the goal (added latency, ratio, growth ...). */
  checked: number | null;
  checkedUnit: string;
  /** true: goal met, false: missed, null: no goal (information only). */
  pass: boolean | null;
  note?: string;
}

export interface RowInput {
  scenario: string;
  metric: string;
  unit: string;
  natprox: number | null;
  direct?: number | null;
  goal?: { text: string; value: number; unit: string; max?: number; min?: number };
  note?: string;
}

export function row(input: RowInput): Row {
  const direct = input.direct ?? null;
  const ratio =
    input.natprox !== null && direct !== null && direct !== 0 && Number.isFinite(direct)
      ? input.natprox / direct
      : null;
  const goal = input.goal;
  let pass: boolean | null = null;
  if (goal) {
    pass = Number.isFinite(goal.value);
    if (goal.max !== undefined) pass &&= goal.value <= goal.max;
    if (goal.min !== undefined) pass &&= goal.value >= goal.min;
  }
  return {
    scenario: input.scenario,
    metric: input.metric,
    unit: input.unit,
    natprox: input.natprox,
    direct,
    ratio,
    goal: goal?.text ?? '—',
    checked: goal ? goal.value : null,
    checkedUnit: goal?.unit ?? '',
    pass,
    ...(input.note ? { note: input.note } : {}),
  };
}

export function fmt(value: number | null, unit = ''): string {
  if (value === null || Number.isNaN(value)) return '—';
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  const digits = abs >= 1000 ? 0 : abs >= 100 ? 1 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
  const text = value.toLocaleString('en-US', {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
  return unit ? `${text} ${unit}` : text;
}

function ratioText(ratio: number | null): string {
  if (ratio === null) return '—';
  return ratio >= 0.1 ? `${ratio.toFixed(2)}x` : `${(ratio * 100).toFixed(1)}%`;
}

export function resultText(pass: boolean | null): string {
  return pass === null ? 'info' : pass ? 'pass' : 'MISS';
}

/** The table as Markdown (readable in a terminal and pastable into bench/README.md). */
export function markdownTable(rows: readonly Row[]): string {
  const header = ['scenario', 'metric', 'natprox', 'direct', 'ratio', 'goal', 'checked', 'result'];
  const body = rows.map((r) => [
    r.scenario,
    r.metric,
    fmt(r.natprox, r.unit),
    fmt(r.direct, r.unit),
    ratioText(r.ratio),
    r.goal,
    r.checked === null ? '—' : fmt(r.checked, r.checkedUnit),
    resultText(r.pass),
  ]);
  const widths = header.map((h, i) =>
    Math.max(h.length, ...body.map((cells) => cells[i]?.length ?? 0)),
  );
  const line = (cells: string[]): string =>
    `| ${cells.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [
    line(header),
    `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
    ...body.map(line),
  ].join('\n');
}

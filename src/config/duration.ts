/**
 * Durations as `as2 prune --older-than` and `receive.retention.olderThan` take them (contract §7):
 * a whole number and a unit, m (minutes), h (hours), d (days) or w (weeks): 30m, 12h, 90d, 2w.
 */
const UNIT_MS = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;
const DURATION = /^([1-9]\d{0,6})([mhdw])$/;

export const DURATION_FORMS = "a whole number followed by m, h, d or w (minutes, hours, days, weeks), such as 30m, 12h, 90d or 2w";

/** The duration in ms, or undefined when the text is not one of the allowed forms. */
export function parseDuration(text: string): number | undefined {
  const m = DURATION.exec(text.trim());
  return m ? Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS] : undefined;
}

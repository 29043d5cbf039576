/** Where a batch's or a sweep's time goes, for the debug log (the fan-out benchmark reads it): `lap(name)` ends a phase. */
export function phaseTimer(): { phases: Record<string, number>; lap: (name: string) => void } {
  const phases: Record<string, number> = {};
  let mark = Date.now();
  return {
    phases,
    lap(name) {
      const t = Date.now();
      phases[name] = (phases[name] ?? 0) + t - mark;
      mark = t;
    },
  };
}

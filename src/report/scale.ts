/** Linear and logarithmic scales with readable ticks. */

/** Maps a domain interval onto a range interval (pixels). */
export interface Scale {
  readonly domain: readonly [number, number];
  readonly range: readonly [number, number];
  /** The pixel position of a domain value. */
  map(value: number): number;
  /** About `count` round values inside the domain. */
  ticks(count: number): number[];
}

/** Round tick values (1, 2, 5 times a power of ten) covering [min, max]. */
export function niceTicks(min: number, max: number, count: number): number[] {
  if (!(max > min)) return [min];
  const raw = (max - min) / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  const ratio = raw / power;
  const step = power * (ratio >= Math.sqrt(50) ? 10 : ratio >= Math.sqrt(10) ? 5 : ratio >= Math.sqrt(2) ? 2 : 1);
  const ticks: number[] = [];
  for (let k = Math.ceil(min / step - 1e-9); k * step <= max + step * 1e-9; k++) ticks.push(Number((k * step).toPrecision(12)));
  return ticks;
}

/** A linear scale. A degenerate domain maps everything to the range start. */
export function linearScale(domain: readonly [number, number], range: readonly [number, number]): Scale {
  const [d0, d1] = domain;
  const [r0, r1] = range;
  const k = d1 === d0 ? 0 : (r1 - r0) / (d1 - d0);
  return { domain, range, map: (v) => r0 + (v - d0) * k, ticks: (count) => niceTicks(d0, d1, count) };
}

/** A base-10 logarithmic scale over a positive domain; ticks at 1, 2, 5 times powers of ten. */
export function logScale(domain: readonly [number, number], range: readonly [number, number]): Scale {
  const l0 = Math.log10(Math.max(domain[0], 1e-12));
  const l1 = Math.log10(Math.max(domain[1], domain[0] * 1.0001, 1e-12));
  const inner = linearScale([l0, l1], range);
  return {
    domain,
    range,
    map: (v) => inner.map(Math.log10(Math.max(v, 1e-12))),
    ticks: (count) => {
      const ticks: number[] = [];
      const decades = Math.ceil(l1) - Math.floor(l0);
      const steps = decades > count ? [1] : decades > count / 3 ? [1, 3] : [1, 2, 5];
      for (let p = Math.floor(l0); p <= Math.ceil(l1); p++) {
        for (const m of steps) {
          const v = m * 10 ** p;
          if (v >= domain[0] * 0.9999 && v <= domain[1] * 1.0001) ticks.push(v);
        }
      }
      return ticks;
    },
  };
}

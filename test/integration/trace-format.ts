/**
 * A checker of Chrome Trace Event Format files as convsim writes them (the
 * JSON object form), against the rules Perfetto and chrome://tracing rely
 * on. Returns the problems found and figures for the test to print.
 */

/** One event as read from the file (fields unchecked). */
export interface RawEvent {
  readonly name?: unknown;
  readonly ph?: unknown;
  readonly ts?: unknown;
  readonly pid?: unknown;
  readonly tid?: unknown;
  readonly dur?: unknown;
  readonly id?: unknown;
  readonly s?: unknown;
  readonly args?: Record<string, unknown>;
}

/** What {@link checkTrace} found. */
export interface TraceCheck {
  readonly problems: string[];
  readonly events: number;
  readonly byPhase: Record<string, number>;
  readonly slices: number;
  /** Slices that lie inside another slice of their thread (our design makes them disjoint). */
  readonly nestedSlices: number;
  readonly flows: number;
  /** Flow starts (`s`) not inside any slice of their thread, by message name. */
  readonly unenclosedStarts: Record<string, number>;
  /** Flow starts that are inside a `send ...` slice (a send outside a handled message), by slice name. */
  readonly sendSlices: Record<string, number>;
  readonly counterNames: string[];
  /** Instant events (violations), in file order. */
  readonly instants: RawEvent[];
  readonly threadNames: Record<number, string>;
  readonly otherData: Record<string, unknown>;
}

/** Timestamps are float microseconds: this much slack (1 ns) for rounding. */
const EPS = 1e-3;

interface Slice {
  readonly name: string;
  readonly ts: number;
  readonly end: number;
}

/** Check a parsed trace file. */
export function checkTrace(json: unknown): TraceCheck {
  const problems: string[] = [];
  const problem = (text: string): void => {
    if (problems.length < 50) problems.push(text);
  };
  if (typeof json !== 'object' || json === null || !Array.isArray((json as { traceEvents?: unknown }).traceEvents)) {
    return { problems: ['not the object form: no traceEvents array'], events: 0, byPhase: {}, slices: 0, nestedSlices: 0, flows: 0,
      unenclosedStarts: {}, sendSlices: {}, counterNames: [], instants: [], threadNames: {}, otherData: {} };
  }
  const file = json as { traceEvents: RawEvent[]; otherData?: Record<string, unknown> };
  const events = file.traceEvents;
  const byPhase: Record<string, number> = {};
  const slicesByTid = new Map<number, Slice[]>();
  const starts = new Map<number, RawEvent[]>();
  const finishes = new Map<number, RawEvent[]>();
  const threadNames: Record<number, string> = {};
  const usedTids = new Set<number>();
  const counterNames = new Set<string>();
  const instants: RawEvent[] = [];
  events.forEach((e, i) => {
    const where = `event ${i} (${JSON.stringify(e).slice(0, 120)})`;
    if (typeof e.name !== 'string' || e.name === '') problem(`${where}: no name`);
    if (typeof e.ts !== 'number' || !Number.isFinite(e.ts)) problem(`${where}: ts is not a number`);
    if (typeof e.pid !== 'number') problem(`${where}: no pid`);
    if (typeof e.tid !== 'number') problem(`${where}: no tid`);
    const ph = String(e.ph);
    byPhase[ph] = (byPhase[ph] ?? 0) + 1;
    const tid = e.tid as number;
    const ts = e.ts as number;
    switch (ph) {
      case 'X': {
        if (typeof e.dur !== 'number' || !(e.dur >= 0)) problem(`${where}: X without dur >= 0`);
        const list = slicesByTid.get(tid) ?? [];
        list.push({ name: String(e.name), ts, end: ts + (e.dur as number) });
        slicesByTid.set(tid, list);
        usedTids.add(tid);
        break;
      }
      case 's':
      case 'f': {
        if (typeof e.id !== 'number') problem(`${where}: flow event without id`);
        const map = ph === 's' ? starts : finishes;
        map.set(e.id as number, [...(map.get(e.id as number) ?? []), e]);
        usedTids.add(tid);
        break;
      }
      case 'C':
        counterNames.add(String(e.name));
        if (e.args === undefined || Object.values(e.args).some((v) => typeof v !== 'number')) problem(`${where}: counter without numeric args`);
        usedTids.add(tid);
        break;
      case 'i':
        if (e.s !== 't') problem(`${where}: instant event without scope t (thread)`);
        instants.push(e);
        usedTids.add(tid);
        break;
      case 'M':
        if (e.name === 'thread_name') {
          if (typeof e.args?.['name'] !== 'string') problem(`${where}: thread_name without args.name`);
          else threadNames[tid] = e.args['name'];
        }
        break;
      default:
        problem(`${where}: phase ${ph} is not one of X s f C i M`);
    }
  });
  if (!events.some((e) => e.ph === 'M' && e.name === 'process_name')) problem('no process_name metadata');
  for (const tid of usedTids) if (threadNames[tid] === undefined) problem(`tid ${tid} has events but no thread_name`);

  // Slices nest strictly on each thread (a stack walk over slices sorted by start, longest first).
  let nestedSlices = 0;
  let sliceCount = 0;
  for (const [tid, list] of slicesByTid) {
    list.sort((a, b) => a.ts - b.ts || b.end - a.end);
    sliceCount += list.length;
    const stack: Slice[] = [];
    for (const s of list) {
      while (stack.length > 0 && stack.at(-1)!.end <= s.ts + EPS) stack.pop();
      const top = stack.at(-1);
      if (top !== undefined) {
        if (s.end > top.end + EPS) problem(`tid ${tid}: ${s.name}@${s.ts} partially overlaps ${top.name}@${top.ts}..${top.end}`);
        else nestedSlices++;
      }
      stack.push(s);
    }
  }

  // Flows: one start and one finish per id, the start not after the finish; where they sit.
  const unenclosedStarts: Record<string, number> = {};
  const sendSlices: Record<string, number> = {};
  const enclosing = (tid: number, ts: number): Slice | undefined => {
    const list = slicesByTid.get(tid) ?? [];
    let lo = 0;
    let hi = list.length - 1;
    let found: Slice | undefined;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid]!.ts <= ts + EPS) {
        found = list[mid];
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found !== undefined && ts <= found.end + EPS ? found : undefined;
  };
  for (const id of new Set([...starts.keys(), ...finishes.keys()])) {
    const s = starts.get(id) ?? [];
    const f = finishes.get(id) ?? [];
    if (s.length !== 1 || f.length !== 1) {
      problem(`flow ${id}: ${s.length} starts and ${f.length} finishes`);
      continue;
    }
    const start = s[0]!;
    const finish = f[0]!;
    if ((start.ts as number) > (finish.ts as number) + EPS) problem(`flow ${id}: starts at ${String(start.ts)} after it finishes at ${String(finish.ts)}`);
    const slice = enclosing(start.tid as number, start.ts as number);
    if (slice === undefined) unenclosedStarts[String(start.name)] = (unenclosedStarts[String(start.name)] ?? 0) + 1;
    else if (slice.name.startsWith('send ')) sendSlices[slice.name] = (sendSlices[slice.name] ?? 0) + 1;
    const target = enclosing(finish.tid as number, finish.ts as number);
    if (target === undefined || Math.abs(target.ts - (finish.ts as number)) > EPS) problem(`flow ${id}: finish is not at the start of a slice`);
  }
  return {
    problems, events: events.length, byPhase, slices: sliceCount, nestedSlices, flows: starts.size, unenclosedStarts, sendSlices,
    counterNames: [...counterNames].sort(), instants, threadNames, otherData: file.otherData ?? {},
  };
}

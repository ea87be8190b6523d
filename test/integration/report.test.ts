/**
 * `convsim run --report`: the HTML report of a small run is one
 * self-contained file with its charts; when Debian's `chromium` is
 * installed, it is opened headless to check that the charts render with no
 * console message or script error, and a screenshot is saved under
 * `test-output/`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/workers/worker-url.js';

const CLI = join(packageRoot(), 'dist', 'cli', 'main.js');
/** Debian's chromium; CONVSIM_CHROMIUM overrides the path (e.g. to see the skip). */
const CHROMIUM = process.env['CONVSIM_CHROMIUM'] ?? '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
const dir = mkdtempSync(join(tmpdir(), 'convsim-report-'));
const reportFile = join(dir, 'report.html');
/** The charts the report draws: memory map, conversions/s, mappings, at least one latency histogram. */
const CHART_CLASSES = ['memory-map', 'conversion-rate', 'mappings', 'latency-histogram'];

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Run headless Chromium on a file; returns what it printed. */
function chromium(file: string, extra: string[]): { status: number | null; stdout: string; stderr: string } {
  const profile = mkdtempSync(join(dir, 'profile-'));
  const r = spawnSync(CHROMIUM, [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run', '--hide-scrollbars', `--user-data-dir=${profile}`, '--enable-logging=stderr', '--v=0',
    ...extra, pathToFileURL(file).href,
  ], { encoding: 'utf8', timeout: 60_000, maxBuffer: 64 * 1024 * 1024 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Console messages and uncaught errors, as Chromium logs them with --enable-logging=stderr. */
function consoleLines(stderr: string): string[] {
  return stderr.split('\n').filter((line) => /:CONSOLE[:(]|Uncaught/.test(line));
}

describe('convsim run --report', () => {
  let html = '';
  beforeAll(() => {
    const r = spawnSync(process.execPath, [CLI, 'run', '--guest-mem', '64M', '--conversions', '300', '--protocol', 'fixed', '--report', reportFile],
      { encoding: 'utf8', timeout: 120_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    html = readFileSync(reportFile, 'utf8');
  }, 120_000);

  it('is one self-contained HTML file with every chart', () => {
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    // Nothing fetched: no external src/href, no @import, no url() other than a fragment.
    expect(html).not.toMatch(/\b(?:src|href)\s*=\s*"(?!#)/);
    expect(html).not.toMatch(/@import|url\((?!#)/);
    expect(html).not.toMatch(/https?:\/\//);
    for (const cls of CHART_CLASSES) expect(html).toContain(`class="chart ${cls}"`);
    expect(html).toContain('dma_entry_limit');
  });

  it.skipIf(!hasChromium)('renders in headless Chromium with no console message, and a screenshot is saved', () => {
    // The scan must see a console error where there is one (guards against a changed log format).
    const control = join(dir, 'control.html');
    writeFileSync(control, '<!DOCTYPE html><html><body><script>console.error("control-error")</script></body></html>');
    expect(consoleLines(chromium(control, ['--dump-dom']).stderr).join('\n')).toContain('control-error');

    const dom = chromium(reportFile, ['--dump-dom']);
    expect(dom.status).toBe(0);
    expect(consoleLines(dom.stderr)).toEqual([]);
    // The page's script ran to its end and counted the charts it found.
    const ready = /data-report-ready="(\d+)"/.exec(dom.stdout);
    expect(ready).not.toBeNull();
    const expected = (html.match(/class="chart /g) ?? []).length;
    expect(Number(ready![1])).toBe(expected);
    expect(expected).toBeGreaterThanOrEqual(CHART_CLASSES.length);

    const out = join(packageRoot(), 'test-output');
    mkdirSync(out, { recursive: true });
    const png = join(out, 'report.png');
    rmSync(png, { force: true });
    const shot = chromium(reportFile, [`--screenshot=${png}`, '--window-size=1200,1600']);
    expect(shot.status).toBe(0);
    expect(consoleLines(shot.stderr)).toEqual([]);
    expect(statSync(png).size).toBeGreaterThan(20_000);
    console.log(`report screenshot: ${png}`);
  }, 120_000);

  if (!hasChromium) console.log(`convsim run --report: skipping the headless-browser check, ${CHROMIUM} is not installed (apt-get install chromium)`);
});

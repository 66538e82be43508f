// How long each console page takes to show its data, in headless Chromium:
//   node tests/console/load-time.mjs http://127.0.0.1:9275 [RUNS] [CONTROL_ID]
// From the navigation's start to the page's table (or message view) being
// in the page, each page RUNS times (default 11), fresh tab each time.
// Prints the median and the slowest, in milliseconds. BENCHMARKS.md has a run.
import { chromium } from 'playwright-core';

const [base, runsText = '11', controlId = ''] = process.argv.slice(2);
if (!base) {
  console.error('usage: node load-time.mjs BASE_URL [RUNS] [CONTROL_ID]');
  process.exit(2);
}
const runs = Number(runsText);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

async function measure(path, selector) {
  const times = [];
  for (let i = 0; i < runs; i += 1) {
    const page = await browser.newPage();
    const started = performance.now();
    await page.goto(`${base}${path}`, { waitUntil: 'commit' });
    await page.locator(selector).first().waitFor({ timeout: 30000 });
    times.push(performance.now() - started);
    await page.close();
  }
  times.sort((a, b) => a - b);
  return { path, median_ms: Math.round(times[Math.floor(times.length / 2)]), max_ms: Math.round(times[times.length - 1]) };
}

const pages = [
  // The browser's own cost of a new tab and a request: a page with no script.
  ['/healthz', 'body'],
  ['/', '#connectors table'],
  ['/messages', '#results table'],
  ['/dead-letters', '.tabs a'],
];
if (controlId) pages.push([`/messages?control_id=${encodeURIComponent(controlId)}`, '#results table']);
const results = [];
for (const [path, selector] of pages) results.push(await measure(path, selector));
// A message view: the newest message's.
const page = await browser.newPage();
await page.goto(`${base}/messages`);
const href = await page.locator('#results tbody a').first().getAttribute('href');
await page.close();
results.push(await measure(href, '#segments [data-segment=PID]'));
await browser.close();
for (const r of results) console.log(`${r.path.padEnd(40)} median ${String(r.median_ms).padStart(5)} ms   slowest ${String(r.max_ms).padStart(5)} ms`);

// Drives one headless Chromium page for the console's browser tests
// (tests/e2e/support/browser.rs). One JSON command per line on stdin, one
// JSON answer per line on stdout: {"ok": true, "value": ...} or
// {"ok": false, "error": "..."}. Playwright waits for elements itself, up
// to `timeout_ms`, so the tests never sleep.
import { createInterface } from 'node:readline';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';
const timeout = Number(process.env.BROWSER_TIMEOUT_MS ?? 15000);
const profile = mkdtempSync(join(tmpdir(), 'sluice-console-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath,
  headless: true,
  viewport: { width: 1360, height: 900 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const page = context.pages()[0] ?? (await context.newPage());
page.setDefaultTimeout(timeout);
const consoleErrors = [];
page.on('pageerror', (err) => consoleErrors.push(String(err)));
page.on('console', (message) => { if (message.type() === 'error') consoleErrors.push(message.text()); });

const commands = {
  goto: ({ url }) => page.goto(url, { waitUntil: 'domcontentloaded' }).then(() => null),
  url: () => page.url(),
  // Waits until an element matching `selector` contains `text`.
  wait_text: ({ selector, text }) => page.locator(selector).filter({ hasText: text }).first().waitFor().then(() => null),
  wait_visible: ({ selector }) => page.locator(selector).first().waitFor({ state: 'visible' }).then(() => null),
  // 'commit': the console changes its URL with the History API, which fires no load event.
  wait_url: ({ pattern }) => page.waitForURL(new RegExp(pattern), { waitUntil: 'commit' }).then(() => null),
  text: ({ selector }) => page.locator(selector).first().innerText(),
  texts: ({ selector }) => page.locator(selector).allInnerTexts(),
  attribute: ({ selector, name }) => page.locator(selector).first().getAttribute(name),
  count: ({ selector }) => page.locator(selector).count(),
  fill: ({ selector, value }) => page.locator(selector).first().fill(value).then(() => null),
  select: ({ selector, value }) => page.locator(selector).first().selectOption(value).then(() => null),
  click: ({ selector }) => page.locator(selector).first().click().then(() => null),
  press: ({ selector, key }) => page.locator(selector).first().press(key).then(() => null),
  body_text: () => page.locator('body').innerText(),
  session_storage: () => page.evaluate(() => JSON.stringify(sessionStorage)),
  screenshot: ({ path }) => page.screenshot({ path, fullPage: true }).then(() => null),
  errors: () => consoleErrors.splice(0),
};

const input = createInterface({ input: process.stdin });
for await (const line of input) {
  if (!line.trim()) continue;
  let answer;
  try {
    const command = JSON.parse(line);
    const run = commands[command.cmd];
    if (!run) throw new Error(`unknown command ${command.cmd}`);
    answer = { ok: true, value: (await run(command)) ?? null };
  } catch (err) {
    answer = { ok: false, error: String(err?.message ?? err) };
  }
  process.stdout.write(`${JSON.stringify(answer)}\n`);
}
await context.close();
rmSync(profile, { recursive: true, force: true });

// melody-tokio's events example in a real browser: one page holds an EventSource and
// a WebSocket on the same device; an event POSTed to the device shows in both; when
// the device's sessions are cut (POST /devices/ID/disconnect), the EventSource
// reconnects by itself and shows a later event; events POSTed while it is away are
// replayed from the device's history when it comes back, once each, in order. Run
// through ./run.sh, which builds
// the example and sets EVENTS_BIN and CHROMIUM (if not the Debian path).
//
// Set EVENTS_SCREENSHOT=path.png to keep a picture of the page.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chromium } from "playwright-core";

const EVENTS_BIN = process.env.EVENTS_BIN;
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const WAIT_MS = 15_000;

/** Starts the events example on a free port; resolves with its URL and the process. */
function startEvents() {
  assert.ok(EVENTS_BIN, "EVENTS_BIN must name the built events example");
  const child = spawn(EVENTS_BIN, ["--addr", "127.0.0.1:0"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("events printed no address")), WAIT_MS);
    let out = "";
    child.stdout.on("data", (chunk) => {
      out += chunk;
      const found = out.match(/http:\/\/[\d.]+:\d+\//);
      if (found) {
        clearTimeout(timer);
        resolve({ url: found[0], child });
      }
    });
    child.on("exit", (code) => reject(new Error(`events exited early (${code})`)));
  });
}

/** Publishes `data` as event `name` through the page's form. */
async function publish(page, name, data) {
  await page.fill("#publish input[name=name]", name);
  await page.fill("#publish input[name=data]", data);
  await page.click("#publish button");
}

test("melody-tokio: an EventSource and a WebSocket on one device, and the EventSource reconnecting", { timeout: 60_000 }, async () => {
  const { url, child } = await startEvents();
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
  try {
    const context = await browser.newContext({ viewport: { width: 1100, height: 700 } });
    const page = await context.newPage();
    page.setDefaultTimeout(WAIT_MS);
    await page.goto(`${url}?device=browser-1`);
    // events.html mirrors both connections' states on <body>.
    await page.waitForSelector("body[data-sse=open][data-ws=open]");

    const first = `first ${Date.now()}`;
    await publish(page, "reading", first);
    await page.locator("#sse li", { hasText: `reading: ${first}` }).waitFor();
    await page.locator("#ws li", { hasText: first }).waitFor();
    await page.locator("#delivery", { hasText: '202 {"queued":2,' }).waitFor();

    // Cut the device's sessions: the event stream ends, and the EventSource opens a
    // new one by itself after the retry: the server sent (one second).
    await page.click("#disconnect");
    await page.locator("#delivery", { hasText: '200 {"closed":2}' }).waitFor();
    await page.waitForSelector("body[data-sse-opens='2'][data-sse=open]");

    const later = `later ${Date.now()}`;
    await publish(page, "reading", later);
    await page.locator("#sse li", { hasText: `reading: ${later}` }).waitFor();
    assert.deepEqual(await page.locator("#sse li").allTextContents(), [
      `reading: ${first}`,
      `reading: ${later}`,
    ]);

    if (process.env.EVENTS_SCREENSHOT) {
      await page.screenshot({ path: process.env.EVENTS_SCREENSHOT });
    }
  } finally {
    await browser.close();
    child.kill();
  }
});

/** POSTs `data` as event `name` from the test itself (not the page): fast enough to
 * land while the page's connections are away. Resolves with the delivery counts. */
async function postEvent(url, device, name, data) {
  const response = await fetch(`${url}devices/${device}/events`, {
    method: "POST",
    headers: { "X-Event-Name": name },
    body: data,
  });
  assert.equal(response.status, 202);
  return response.json();
}

test("melody-tokio: events published while the EventSource is away arrive once, in order, when it reconnects", { timeout: 60_000 }, async () => {
  const { url, child } = await startEvents();
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
  });
  try {
    const page = await (await browser.newContext()).newPage();
    page.setDefaultTimeout(WAIT_MS);
    await page.goto(`${url}?device=resume-1`);
    await page.waitForSelector("body[data-sse=open][data-ws=open]");
    await publish(page, "reading", "before");
    await page.locator("#sse li", { hasText: "reading: before" }).waitFor();
    await page.locator("#ws li", { hasText: "before" }).waitFor();

    // Cut both sessions; both clients come back only after a second.
    await page.click("#disconnect");
    await page.locator("#delivery", { hasText: '200 {"closed":2}' }).waitFor();
    const missed = ["m1", "m2", "m3", "m4", "m5"];
    for (const data of missed) {
      const delivery = await postEvent(url, "resume-1", "reading", data);
      // Nobody was connected: only the history kept these.
      assert.equal(delivery.queued, 0, `published while away: ${JSON.stringify(delivery)}`);
    }

    await page.waitForSelector("body[data-sse-opens='2'][data-sse=open]");
    await page.locator("#sse li", { hasText: "reading: m5" }).waitFor();
    await page.waitForSelector("body[data-ws=open]");
    await page.locator("#ws li", { hasText: "m5" }).waitFor();
    await postEvent(url, "resume-1", "reading", "live");
    await page.locator("#sse li", { hasText: "reading: live" }).waitFor();
    await page.locator("#ws li", { hasText: "live" }).waitFor();

    const expected = ["before", ...missed, "live"];
    assert.deepEqual(
      await page.locator("#sse li").allTextContents(),
      expected.map((d) => `reading: ${d}`),
    );
    const wsData = (await page.locator("#ws li").allTextContents()).filter((t) => !t.startsWith("("));
    assert.deepEqual(wsData, expected);
  } finally {
    await browser.close();
    child.kill();
  }
});

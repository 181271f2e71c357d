// melody-redis's cluster_chat example in a real browser: two nodes on two ports share
// one Redis; a page on node A and a page on node B each see what the other types. Run
// through ./cluster.sh, which builds the example, starts a Redis if MELODY_REDIS_URL is
// unset, and sets CLUSTER_CHAT_BIN, MELODY_REDIS_URL and CHROMIUM.
//
// Set SCREENSHOT=path.png to keep a picture of node B's page.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chromium } from "playwright-core";

const BIN = process.env.CLUSTER_CHAT_BIN;
const REDIS = process.env.MELODY_REDIS_URL;
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const WAIT_MS = 15_000;

/** Starts one node on a free port; resolves once it serves and Redis is connected. */
function startNode() {
  assert.ok(BIN, "CLUSTER_CHAT_BIN must name the built cluster_chat example");
  assert.ok(REDIS, "MELODY_REDIS_URL must name the Redis server");
  const child = spawn(BIN, ["--addr", "127.0.0.1:0", "--redis", REDIS], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("node did not connect to Redis")), WAIT_MS);
    let out = "";
    child.stdout.on("data", (chunk) => {
      out += chunk;
      const found = out.match(/http:\/\/[\d.]+:\d+\//);
      if (found && out.includes("connected to Redis")) {
        clearTimeout(timer);
        resolve({ url: found[0], child });
      }
    });
    child.on("exit", (code) => reject(new Error(`node exited early (${code})`)));
  });
}

async function openChat(browser, url) {
  const context = await browser.newContext({ viewport: { width: 900, height: 600 } });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT_MS);
  await page.goto(url);
  await page.waitForSelector("body[data-connected=yes]");
  return page;
}

async function say(page, line) {
  await page.fill("#text", line);
  await page.press("#text", "Enter");
}

test("cluster_chat: pages on two nodes sharing Redis see each other's lines", { timeout: 60_000 }, async () => {
  const a = await startNode();
  const b = await startNode();
  assert.notEqual(a.url, b.url, "two nodes, two ports");
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  try {
    const onA = await openChat(browser, a.url);
    const onB = await openChat(browser, b.url);

    const fromA = `hello from node A ${Date.now()}`;
    await say(onA, fromA);
    for (const page of [onB, onA]) {
      await page.locator("#chat p", { hasText: fromA }).waitFor();
    }
    const fromB = `and back from node B ${Date.now()}`;
    await say(onB, fromB);
    for (const page of [onA, onB]) {
      await page.locator("#chat p", { hasText: fromB }).waitFor();
    }
    assert.deepEqual(await onB.locator("#chat p").allTextContents(), [fromA, fromB]);
    assert.deepEqual(await onA.locator("#chat p").allTextContents(), [fromA, fromB]);

    if (process.env.SCREENSHOT) {
      await onB.screenshot({ path: process.env.SCREENSHOT });
    }
  } finally {
    await browser.close();
    a.child.kill();
    b.child.kill();
  }
});

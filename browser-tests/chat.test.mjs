// The chat example in a real browser: two headless Chromium pages on one chat server;
// a line typed into the first appears in both. Run through ./run.sh, which builds the
// example and sets CHAT_BIN, CHAT_ADAPTER (whose example it is), CHAT_COMPRESSION (the
// example's --compression: off, shared or dedicated) and CHROMIUM (if not the Debian
// path). With compression on, the page must report permessage-deflate as agreed (what
// Chromium read in the 101's Sec-WebSocket-Extensions) and a long line, compressed both
// ways, must arrive whole.
//
// Set SCREENSHOT=path.png to keep a picture of the second page.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chromium } from "playwright-core";

const CHAT_BIN = process.env.CHAT_BIN;
const CHAT_ADAPTER = process.env.CHAT_ADAPTER || "melody-tokio";
const CHAT_COMPRESSION = process.env.CHAT_COMPRESSION || "off";
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const WAIT_MS = 15_000;

/** Starts the chat example on a free port; resolves with its URL and the process. */
function startChat() {
  assert.ok(CHAT_BIN, "CHAT_BIN must name the built chat example");
  const child = spawn(CHAT_BIN, ["--addr", "127.0.0.1:0", "--compression", CHAT_COMPRESSION], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("chat printed no address")), WAIT_MS);
    let out = "";
    child.stdout.on("data", (chunk) => {
      out += chunk;
      const found = out.match(/http:\/\/[\d.]+:\d+\//);
      if (found) {
        clearTimeout(timer);
        resolve({ url: found[0], child });
      }
    });
    child.on("exit", (code) => reject(new Error(`chat exited early (${code})`)));
  });
}

/** Opens the chat page in its own browser context and waits for its socket. */
async function openChat(browser, url) {
  const context = await browser.newContext({ viewport: { width: 900, height: 600 } });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT_MS);
  await page.goto(url);
  // chat.html marks the body once its WebSocket is open.
  await page.waitForSelector("body[data-connected=yes]");
  return page;
}

test(`${CHAT_ADAPTER} (compression ${CHAT_COMPRESSION}): a chat line typed in one page appears in both`, { timeout: 60_000 }, async () => {
  const { url, child } = await startChat();
  // playwright gives each launch a fresh temporary profile (--user-data-dir).
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
    const one = await openChat(browser, url);
    const two = await openChat(browser, url);

    for (const page of [one, two]) {
      const agreed = await page.locator("body").getAttribute("data-extensions");
      if (CHAT_COMPRESSION === "off") {
        assert.equal(agreed, "", "no extension without --compression");
      } else {
        assert.match(agreed, /^permessage-deflate/, `agreed: ${agreed}`);
        assert.equal(
          agreed.includes("server_no_context_takeover"),
          CHAT_COMPRESSION === "shared",
          `agreed: ${agreed}`,
        );
      }
    }

    const line = `hello from page one ${Date.now()}`;
    // Past the 256-byte threshold: compressed on the way in and out when agreed.
    const long = `${line} ${"and the chat goes on, ".repeat(20)}`;
    for (const text of [line, long]) {
      await one.fill("#text", text);
      await one.press("#text", "Enter");
      for (const page of [two, one]) {
        await page.locator("#chat p", { hasText: text }).last().waitFor();
      }
    }
    assert.equal(await one.inputValue("#text"), "", "the input is cleared after sending");
    assert.deepEqual(await two.locator("#chat p").allTextContents(), [line, long]);

    if (process.env.SCREENSHOT) {
      await two.screenshot({ path: process.env.SCREENSHOT });
    }
  } finally {
    await browser.close();
    child.kill();
  }
});

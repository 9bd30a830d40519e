// The web client in a real browser (Debian's Chromium driven by playwright-core) against a
// running `rosetta all`: two people register in two browser contexts, befriend each other and
// chat both ways live; a third connected over the pipe bridge (a raw socket speaking the pipe
// protocol, as the QtQQ client does) befriends one of them and sends a message that appears in
// the page. Screenshots go to ROSETTA_ARTIFACTS.
//
// Run by tests/web_client.rs, which starts the server:
//   ROSETTA_WEB_URL=http://127.0.0.1:8080 ROSETTA_PIPE_ADDR=127.0.0.1:8263 \
//   ROSETTA_ARTIFACTS=target/web-test node web/tests/chat.spec.mjs

import { mkdirSync, readFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { chromium } from "playwright-core";

const WEB = required("ROSETTA_WEB_URL");
const PIPE = required("ROSETTA_PIPE_ADDR");
const ARTIFACTS = required("ROSETTA_ARTIFACTS");
const CHROMIUM = process.env.ROSETTA_CHROMIUM || "/usr/bin/chromium";
/** Generous: the machines running the tests are slow and busy. */
const PATIENCE_MS = 30_000;
/** The MD5 hex of "123456": the pipe client sends passwords hashed. */
const PIPE_PASSWORD = "e10adc3949ba59abbe56e057f20f883e";

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

function step(text) {
  console.log(`[web test] ${text}`);
}

/** A pipe client: every reply or push the bridge writes, each waited for by its prefix. */
class Pipe {
  constructor(addr) {
    const [host, port] = [addr.slice(0, addr.lastIndexOf(":")), Number(addr.slice(addr.lastIndexOf(":") + 1))];
    this.socket = net.connect({ host, port });
    this.socket.setNoDelay(true);
    this.received = [];
    this.waiters = [];
    this.socket.on("data", (data) => {
      this.received.push(data.toString("utf8"));
      this.waiters.forEach((wake) => wake());
    });
    this.socket.on("error", (err) => {
      this.error = err;
      this.waiters.forEach((wake) => wake());
    });
  }

  send(line) {
    this.socket.write(line);
  }

  /** The first received piece starting with `prefix` (taken off the list). */
  async expect(prefix) {
    const deadline = Date.now() + PATIENCE_MS;
    for (;;) {
      if (this.error) throw this.error;
      const at = this.received.findIndex((r) => r.startsWith(prefix));
      if (at >= 0) return this.received.splice(at, 1)[0];
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`pipe: no "${prefix}" in ${JSON.stringify(this.received)}`);
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      this.waiters = [];
    }
  }

  async call(line, prefix) {
    this.send(line);
    return this.expect(prefix);
  }

  close() {
    this.socket.destroy();
  }
}

async function openPage(browser, name) {
  const context = await browser.newContext({ acceptDownloads: true });
  const page = await context.newPage();
  page.setDefaultTimeout(PATIENCE_MS);
  page.on("console", (m) => console.log(`[${name} console] ${m.text()}`));
  page.on("pageerror", (e) => console.log(`[${name} page error] ${e.message}`));
  await page.goto(WEB);
  await page.locator("body[data-ready=true]").waitFor();
  return page;
}

async function register(page, username) {
  await page.fill("#username", username);
  await page.fill("#password", `pw-${username}-secret`);
  await page.fill("#nickname", username[0].toUpperCase() + username.slice(1));
  await page.click("#register-btn");
  await page.locator("#app").waitFor({ state: "visible" });
  await page.locator("#auth").waitFor({ state: "hidden" });
  // The event stream is open (its replay ended): live events will arrive.
  await page.locator("body[data-live=true]").waitFor();
  return BigInt(await page.locator("#me").getAttribute("data-id"));
}

async function openChat(page, username) {
  await page.click(`#contacts li[data-username="${username}"] button.open`);
  await page.locator("#chat[data-loaded=true]").waitFor();
}

async function sendText(page, text) {
  await page.fill("#message-input", text);
  await page.click("#send-btn");
}

function message(page, text) {
  return page.locator("#messages li[data-testid=message]").filter({ hasText: text });
}

async function befriend(asker, askee, askeeName, askerName) {
  await asker.fill("#search-input", askeeName);
  await asker.click("#search-btn");
  await asker.click(`#search-results li[data-username="${askeeName}"] button`);
  // The request reaches the other page live, over its Subscribe stream.
  await askee.click(`#requests li[data-username="${askerName}"] button:has-text("Accept")`);
  await askee.locator(`#contacts li[data-username="${askerName}"]`).waitFor();
  await asker.locator(`#contacts li[data-username="${askeeName}"]`).waitFor();
}

async function shoot(page, name) {
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

async function chatBothWays({ alice, bob }, aliceId, bobId) {
  step("they befriend each other, and see each other online");
  await befriend(alice, bob, "bob", "alice");
  await alice.locator(`[data-testid="presence-${bobId}"]`).filter({ hasText: "online" }).waitFor();

  step("a message to a closed chat counts as unread; opening it shows history and marks it read");
  await openChat(alice, "bob");
  await sendText(alice, "are you there?");
  const badge = `[data-testid="unread-user-${aliceId}"]`;
  await bob.locator(badge).filter({ hasText: "1" }).waitFor();
  await openChat(bob, "alice");
  await message(bob, "are you there?").waitFor();
  await bob.locator(`${badge}:empty`).waitFor({ state: "attached" });

  step("they chat both ways, live");
  await sendText(alice, "hello bob, from the browser");
  await message(bob, "hello bob, from the browser").waitFor();
  await sendText(bob, "hi alice!");
  await message(alice, "hi alice!").waitFor();
  await shoot(alice, "alice-chat");
  await shoot(bob, "bob-chat");
}

async function fileAndRecall({ alice, bob }) {
  step("a file goes from alice to bob and comes back out of bob's browser");
  const content = `a small file for bob ${Date.now()}`;
  await alice.setInputFiles("#file-input", {
    name: "note.txt",
    mimeType: "text/plain",
    buffer: Buffer.from(content),
  });
  await alice.click("#upload-btn");
  const fileMessage = message(bob, "note.txt");
  await fileMessage.waitFor();
  const [download] = await Promise.all([
    bob.waitForEvent("download"),
    fileMessage.locator("button.download").click(),
  ]);
  const saved = path.join(ARTIFACTS, "downloaded-note.txt");
  await download.saveAs(saved);
  if (readFileSync(saved, "utf8") !== content) throw new Error("the downloaded file differs");

  step("alice recalls a message; bob sees it recalled");
  const recallable = message(alice, "hello bob, from the browser");
  await recallable.locator("button.recall").click();
  await message(bob, "(message recalled)").waitFor();
  await bob.locator("#messages li[data-recalled=true]").waitFor();
}

async function groupChat({ alice, bob }, bobId) {
  step("alice makes a group with bob in it; they chat there");
  await alice.fill("#group-name", "tea");
  await alice.fill("#group-members", bobId.toString());
  await alice.click("#create-group-btn");
  await alice.click('#groups li[data-name="tea"] button.open');
  await alice.locator("#chat[data-loaded=true]").waitFor();
  await bob.click('#groups li[data-name="tea"] button.open');
  await bob.locator("#chat[data-loaded=true]").waitFor();
  await sendText(alice, "tea at five?");
  await message(bob, "tea at five?").waitFor();
  await sendText(bob, "yes please");
  await message(alice, "yes please").waitFor();
  await shoot(bob, "bob-group-chat");
}

async function pipeUserWrites(alice, aliceId) {
  step("a pipe (QtQQ) user befriends alice and writes to her");
  const pipe = new Pipe(PIPE);
  try {
    await pipe.call(`register|penny|${PIPE_PASSWORD}|Penny|1|hi|1|cat`, "register_succ|");
    const login = await pipe.call(`login|penny|${PIPE_PASSWORD}`, "login_succ|");
    const [, , pennyUid, token] = login.split("|");
    const aliceUid = aliceId.toString().padStart(5, "0");
    await pipe.call(`add_friend|${pennyUid}|${aliceUid}|hello|${token}`, "add_friend_succ|");
    await alice.click(`#requests li[data-username="penny"] button:has-text("Accept")`);
    const penny = alice.locator(`#contacts li[data-username="penny"]`);
    await penny.waitFor();
    // She shows as what she is to her client: uid 000NN.
    await penny.locator(".handles").filter({ hasText: `uid ${pennyUid}` }).waitFor();
    await openChat(alice, "penny");
    await pipe.call(
      `send_message|0|${pennyUid}|${aliceUid}|20261207080000|hello alice from pipe|${token}`,
      "send_message_succ|",
    );
    const fromPipe = message(alice, "hello alice from pipe");
    await fromPipe.waitFor();
    await fromPipe.locator(".handles").filter({ hasText: `uid ${pennyUid}` }).waitFor();
    step("and alice's answer reaches the pipe client");
    await sendText(alice, "hi_penny");
    const pushed = await pipe.expect("message|0|");
    if (!pushed.includes("hi_penny")) throw new Error(`pipe push: ${pushed}`);
    await shoot(alice, "alice-pipe-chat");
  } finally {
    pipe.close();
  }
}

async function main() {
  mkdirSync(ARTIFACTS, { recursive: true });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-dev-shm-usage"],
  });
  const pages = {};
  try {
    pages.alice = await openPage(browser, "alice");
    pages.bob = await openPage(browser, "bob");
    step("two people register in two browser contexts");
    const aliceId = await register(pages.alice, "alice");
    const bobId = await register(pages.bob, "bob");
    await chatBothWays(pages, aliceId, bobId);
    await fileAndRecall(pages);
    await groupChat(pages, bobId);
    await pipeUserWrites(pages.alice, aliceId);

    step("alice logs out");
    await pages.alice.click("#logout-btn");
    await pages.alice.locator("#auth").waitFor({ state: "visible" });
    await pages.alice.locator("#app").waitFor({ state: "hidden" });
    await shoot(pages.alice, "alice-logged-out");
    step("passed");
  } catch (err) {
    for (const [name, page] of Object.entries(pages)) {
      await shoot(page, `failure-${name}`).catch(() => {});
    }
    throw err;
  } finally {
    await browser.close();
  }
}

main().catch((err) => {
  console.error(`[web test] FAILED: ${err.stack || err}`);
  process.exit(1);
});

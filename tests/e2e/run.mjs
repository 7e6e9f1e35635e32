// End-to-end tests of the real desktop app: the release-shaped binary (UI embedded) under
// Xvfb, driven through tauri-driver + WebKitWebDriver with WebdriverIO, only through the
// desktop test contract's data-testids (../../../shared/DESIGN.md is the developers' copy;
// docs/desktop-testing.md lists them). The replies come from the real built-in model; a
// mock gateway (fault-gateway.mjs) stands in only for faults: a cut stream, a 401, a slow reply.
//
// Run by scripts/e2e, which builds the app and the CLI, installs tauri-driver and starts Xvfb.
// Every screen visited is saved to target/e2e-screens/; axe-core checks each one.

import { remote, Key } from "webdriverio";
import { spawn, spawnSync, execFile, execFileSync } from "node:child_process";
import { promisify } from "node:util";
import { existsSync, mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { startFaultGateway } from "./fault-gateway.mjs";

const root = resolve(fileURLToPath(new URL("../..", import.meta.url)));
const APP = process.env.GATEHOUSE_APP ?? join(root, "target/debug/gatehouse-desktop");
/** The same app built with an update feed on loopback and a key made for this run (scripts/e2e). */
const FEED = join(root, "target/e2e-feed");
const FEED_PORT = 47811;
const CLI = process.env.GATEHOUSE_CLI ?? join(root, "target/debug/gatehouse");
const DRIVER = process.env.TAURI_DRIVER ?? join(root, ".tools/bin/tauri-driver");
const MODEL = process.env.GATEHOUSE_TEST_MODEL;
const SHOTS = join(root, "target/e2e-screens");
const AXE = readFileSync(join(root, "node_modules/axe-core/axe.min.js"), "utf8");
const only = process.argv.slice(2);

if (!MODEL) throw new Error("GATEHOUSE_TEST_MODEL must name the built-in model's .gguf file (scripts/e2e sets it)");
mkdirSync(SHOTS, { recursive: true });

/** How long a step may take before the test fails: the model's reply in a debug build included. */
const WAIT = 60_000;

function gatehouse(dataDir, ...args) {
  return execFileSync(CLI, ["--data-dir", dataDir, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

/** A data directory with the built-in model in place and nothing else set up. */
function freshDataDir() {
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-e2e-"));
  gatehouse(dir, "models", "add", MODEL, "--name", "SmolLM2-135M-Instruct.Q4_1");
  return dir;
}

/** The sessions the running test opened: closed after it, their screens saved if it failed. */
let sessions = [];

async function openApp(dataDir, application = APP) {
  const app = await remote({
    hostname: "127.0.0.1",
    port: 4444,
    logLevel: "warn",
    connectionRetryCount: 0,
    capabilities: { "tauri:options": { application, args: ["--data-dir", dataDir] } },
  });
  await app.$('[data-testid="composer"]').waitForExist({ timeout: WAIT });
  // The page's uncaught errors from here on, told if the test fails.
  await app.execute(() => {
    const errors = (window.__e2eErrors = []);
    addEventListener("error", (e) => errors.push(`${e.message}\n${e.error?.stack ?? ""}`));
    addEventListener("unhandledrejection", (e) => errors.push(`unhandled rejection: ${e.reason?.stack ?? JSON.stringify(e.reason)}`));
  });
  sessions.push(app);
  return app;
}

/** End the test's sessions; a failure here must not hide the test's own error. */
async function closeAll(failedAs) {
  for (const [i, app] of sessions.entries()) {
    if (failedAs) {
      await app.saveScreenshot(join(SHOTS, `FAIL-${failedAs}-${i}.png`)).catch(() => {});
      const errors = await app.execute(() => window.__e2eErrors ?? []).catch(() => []);
      if (errors.length) console.log(`     the page's errors:\n     ${errors.slice(-5).join("\n     ")}`);
    }
    await app.deleteSession().catch(() => {});
  }
  sessions = [];
}

const $t = (app, id) => app.$(`[data-testid="${id}"]`);
const $$t = (app, id) => app.$$(`[data-testid="${id}"]`);

async function frames(app) {
  // WebKitWebDriver's screenshot can show a frame from before the last DOM change: wait two frames.
  await app.executeAsync((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
}

/** Save what the person sees, and check it with axe-core: no serious or critical violations. */
async function screen(app, name) {
  await frames(app);
  await app.saveScreenshot(join(SHOTS, `${name}.png`));
  await app.execute(AXE);
  const violations = await app.executeAsync((done) => {
    // eslint-disable-next-line no-undef
    axe.run(document, { resultTypes: ["violations"] }).then((r) =>
      done(r.violations.filter((v) => v.impact === "serious" || v.impact === "critical").map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`)),
    );
  });
  if (violations.length) throw new Error(`accessibility on ${name}:\n  ${violations.join("\n  ")}`);
}

async function lastMessage(app, role) {
  const all = await app.$$(`[data-testid="message"][data-role="${role}"]`);
  return all[all.length - 1];
}

async function waitState(app, el, states) {
  await app.waitUntil(async () => states.includes(await el.getAttribute("data-state")), {
    timeout: WAIT,
    timeoutMsg: `the message did not become ${states.join(" or ")}`,
  });
  return el.getAttribute("data-state");
}

async function send(app, text) {
  const box = await $t(app, "composer");
  await box.setValue(text);
  await (await $t(app, "send")).click();
}

function assert(cond, what) {
  if (!cond) throw new Error(what);
}

/** Wait until `cond()` holds (checked every 100 ms), or fail saying `what` did not happen. */
async function until(cond, what, timeout = WAIT) {
  const end = Date.now() + timeout;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The app's process on `dir` (the driver starts it), or null. */
function appPid(dir) {
  const found = spawnSync("pgrep", ["-f", `gatehouse-desktop --data-dir ${dir}$`], { encoding: "utf8" }).stdout.trim();
  return found ? Number(found.split("\n")[0]) : null;
}

const alive = (pid) => existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].startsWith("Z");

/** What a window manager sees of, and does to, a process's window (tests/e2e/xwindow.py, run by
 * the system's Python: python3-xlib is a Debian package). */
const PYTHON = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
function xwindow(cmd, pid, ...args) {
  return execFileSync(PYTHON, [join(root, "tests/e2e/xwindow.py"), cmd, String(pid), ...args.map(String)], { encoding: "utf8" }).trim();
}

function jobState(dir, id) {
  return JSON.parse(gatehouse(dir, "--json", "jobs", "show", String(id))).state;
}

/** A D-Bus session bus of the test's own (the single-instance handshake goes over it). */
function sessionBus() {
  const out = execFileSync("dbus-daemon", ["--session", "--fork", "--print-address=1", "--print-pid=1"], { encoding: "utf8" }).trim().split("\n");
  return { env: { DBUS_SESSION_BUS_ADDRESS: out[0] }, after: () => process.kill(Number(out[1])) };
}

/** The dark theme, as a desktop that prefers dark would ask for it (GTK's theme variant). */
const DARK = { GTK_THEME: "Adwaita:dark" };

const tests = {
  async "with no set-up, a message gets the built-in model's reply, streamed"() {
    const dir = freshDataDir();
    const app = await openApp(dir);
    await screen(app, "01-first-run");
    // Record every state the reply's DOM goes through, from inside the page.
    await app.execute(() => {
      const seen = (window.__replyStates = []);
      new MutationObserver(() => {
        const m = document.querySelector('[data-testid="message"][data-role="assistant"]');
        if (!m) return;
        const entry = `${m.dataset.state}:${m.querySelector('[data-testid="message-text"]')?.textContent?.length ?? 0}`;
        if (seen[seen.length - 1] !== entry) seen.push(entry);
      }).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
    });
    await send(app, "Tell me about the city of Paris in a few sentences.");
    const reply = await app.$('[data-testid="message"][data-role="assistant"]');
    await reply.waitForExist({ timeout: WAIT });
    await waitState(app, reply, ["complete", "interrupted", "failed"]);
    assert((await reply.getAttribute("data-state")) === "complete", "the reply completed");
    const states = await app.execute(() => window.__replyStates);
    const growing = states.filter((s) => s.startsWith("streaming:") && !s.endsWith(":0"));
    assert(growing.length >= 2, `the reply streamed in: text grew while streaming (${states.join(" ")})`);
    const text = await (await reply.$('[data-testid="message-text"]')).getText();
    assert(text.trim().length > 0, "the reply has text");
    const items = await $$t(app, "conversation-item");
    assert(items.length === 1, `one conversation in the list, not ${items.length}`);
    await screen(app, "02-chat-reply");
  },

  async "with the model file missing, the window fetches it with a progress bar and then answers"() {
    const dir = mkdtempSync(join(tmpdir(), "gatehouse-e2e-"));
    const app = await openApp(dir);
    await send(app, "Hello?");
    // The turn is refused before it starts: a sentence and the fetch, and the message kept.
    const err = await app.$('[data-testid="error"][data-code="model.missing"]');
    await err.waitForExist({ timeout: WAIT });
    assert((await (await $t(app, "composer")).getValue()) === "Hello?", "the message stays in the box");
    await screen(app, "02b-model-missing");
    const fetchButton = await $t(app, "model-fetch");
    await fetchButton.click();
    // Progress is shown while it downloads (from the package index, as these machines reach it).
    const progress = [];
    await app.waitUntil(async () => {
      const b = await $t(app, "model-fetch");
      if (!(await b.isExisting())) return true;
      const p = await b.getAttribute("data-progress");
      if (p !== null && progress[progress.length - 1] !== p) progress.push(p);
      return false;
    }, { timeout: 300_000, interval: 50, timeoutMsg: "the model was not fetched" });
    assert(progress.length > 0, "a progress figure was shown while fetching");
    assert(progress.every((p, i) => i === 0 || Number(p) >= Number(progress[i - 1])), `progress only grows: ${progress.join(" ")}`);
    // Fetched: the note goes, and the message is sent again by the person.
    await (await $t(app, "send")).click();
    await app.$('[data-testid="message"][data-role="assistant"][data-state="complete"]').waitForExist({ timeout: WAIT, timeoutMsg: "no reply after the fetch" });
  },

  async "a reply can be stopped, regenerated, and a message edited and sent again, with versions kept"() {
    const dir = freshDataDir();
    const faults = await startFaultGateway();
    gatehouse(dir, "gateways", "add", "slow", "--kind", "openai", "--url", faults.url("slow"));
    const app = await openApp(dir);
    try {
      const picker = await $t(app, "gateway-picker");
      await picker.selectByAttribute("value", "slow");
      await send(app, "Tell me a long story");
      const reply = await app.$('[data-testid="message"][data-role="assistant"]');
      await reply.waitForExist({ timeout: WAIT });
      await app.waitUntil(async () => (await (await reply.$('[data-testid="message-text"]')).getText()).includes("word3"), { timeout: WAIT });
      await (await $t(app, "stop")).click();
      assert((await waitState(app, reply, ["interrupted", "complete"])) === "interrupted", "a stopped reply shows as interrupted");
      const stoppedText = await (await reply.$('[data-testid="message-text"]')).getText();
      assert(stoppedText.includes("word3") && !stoppedText.includes("word1199"), "the partial text is kept");
      await screen(app, "03-stopped");

      // Regenerate on the built-in model: a second version of the reply, browsable.
      await picker.selectByAttribute("value", "local");
      await (await $t(app, "regenerate")).click();
      await app.waitUntil(async () => (await (await $t(app, "version")).isExisting()) && (await (await $t(app, "version")).getText()) === "2/2", { timeout: WAIT, timeoutMsg: "no version 2/2 after regenerating" });
      const second = await lastMessage(app, "assistant");
      await waitState(app, second, ["complete"]);
      await (await $t(app, "version-previous")).click();
      await app.waitUntil(async () => (await (await $t(app, "version")).getText()) === "1/2", { timeout: WAIT });
      // The list re-renders for the other version: between two renders there may be no reply
      // element to read (CI met it), so it is read until it shows version 1.
      let back;
      await app.waitUntil(async () => {
        const last = await lastMessage(app, "assistant");
        back = last && (await last.$('[data-testid="message-text"]').then((t) => t.getText()).catch(() => undefined));
        return back === stoppedText;
      }, { timeout: WAIT, timeoutMsg: `version 1 is the stopped reply, as it was (it shows ${JSON.stringify(back)})` });

      // Edit the question and send it again: a new version of it, with its own reply.
      await (await $t(app, "edit")).click();
      const input = await $t(app, "edit-input");
      await input.setValue("What is the capital of Italy?");
      await (await $t(app, "edit-send")).click();
      await app.waitUntil(async () => (await (await (await lastMessage(app, "user")).$('[data-testid="message-text"]')).getText()) === "What is the capital of Italy?", { timeout: WAIT });
      const edited = await lastMessage(app, "assistant");
      await waitState(app, edited, ["complete"]);
      const userVersion = await (await lastMessage(app, "user")).$('[data-testid="version"]');
      assert((await userVersion.getText()) === "2/2", "the edited message keeps its first version");
      await screen(app, "04-edited");
    } finally {
      await faults.close();
    }
  },

  async "a cut reply shows as interrupted with its text, and a refused token as a sentence"() {
    const dir = freshDataDir();
    const faults = await startFaultGateway();
    gatehouse(dir, "gateways", "add", "cut", "--kind", "openai", "--url", faults.url("cut"));
    gatehouse(dir, "gateways", "add", "locked", "--kind", "openai", "--url", faults.url("unauthorized"));
    const app = await openApp(dir);
    try {
      await (await $t(app, "gateway-picker")).selectByAttribute("value", "cut");
      await send(app, "Hello?");
      const reply = await app.$('[data-testid="message"][data-role="assistant"]');
      await reply.waitForExist({ timeout: WAIT });
      assert((await waitState(app, reply, ["interrupted", "failed", "complete"])) === "interrupted", "a cut reply is interrupted");
      const text = await (await reply.$('[data-testid="message-text"]')).getText();
      assert(text.startsWith("The first part of this reply"), `the partial text is shown: ${text}`);
      const err = await reply.$('[data-testid="error"]');
      assert((await err.getAttribute("data-code")) === "gateway.incomplete", `code ${await err.getAttribute("data-code")}`);
      assert(await (await $t(app, "continue")).isExisting(), "an interrupted reply can be continued");
      await screen(app, "05-interrupted");

      await (await $t(app, "new-conversation")).click();
      await (await $t(app, "gateway-picker")).selectByAttribute("value", "locked");
      await send(app, "Hello?");
      const refused = await app.$('[data-testid="error"][data-code="gateway.unauthorized"]');
      await refused.waitForExist({ timeout: WAIT });
      const sentence = await refused.getText();
      assert(/locked refused the credentials/i.test(sentence) && /token/.test(sentence), `a sentence naming the gateway and the token: ${sentence}`);
      assert(!/gateway\.unauthorized|panicked|Error\(/.test(sentence), "no raw code or debug text");
      await screen(app, "06-unauthorized");
    } finally {
      await faults.close();
    }
  },

  async "search finds an old message and opens it"() {
    const dir = freshDataDir();
    gatehouse(dir, "chat", "Tell me about the zanzibar archipelago");
    gatehouse(dir, "chat", "Something else entirely");
    const app = await openApp(dir);
    await (await $t(app, "search-input")).setValue("zanzib");
    const hit = await app.$('[data-testid="search-result"][data-message-id]:not([data-message-id=""])');
    await hit.waitForExist({ timeout: WAIT });
    const messageId = await hit.getAttribute("data-message-id");
    assert((await hit.getText()).toLowerCase().includes("zanzibar"), "the hit shows the matching words");
    await screen(app, "07-search");
    await hit.click();
    const target = await app.$(`[data-testid="message"][data-id="${messageId}"]`);
    await target.waitForDisplayed({ timeout: WAIT });
    assert((await target.getText()).toLowerCase().includes("zanzibar"), "the message opened is the one found");
  },

  async "a conversation started from the CLI on the same data dir appears"() {
    const dir = freshDataDir();
    const app = await openApp(dir);
    assert((await $$t(app, "conversation-item")).length === 0, "no conversations at first");
    gatehouse(dir, "chat", "Hello from the terminal");
    await app.waitUntil(async () => (await $$t(app, "conversation-item")).length === 1, { timeout: WAIT, timeoutMsg: "the CLI's conversation did not appear" });
    const item = await $t(app, "conversation-item");
    // innerText: the text as rendered (WebKitWebDriver's getText leaves out an ellipsised title).
    await app.waitUntil(async () => (await app.execute((el) => el.innerText, item)).includes("Hello from the terminal"), { timeout: WAIT, timeoutMsg: "titled by its first message" });
    await item.$("button").click();
    const reply = await app.$('[data-testid="message"][data-role="assistant"][data-state="complete"]');
    await reply.waitForExist({ timeout: WAIT });
    await screen(app, "08-from-cli");
  },

  async "the app killed mid-reply shows the partial reply when it starts again"() {
    const dir = freshDataDir();
    const faults = await startFaultGateway();
    gatehouse(dir, "gateways", "add", "slow", "--kind", "openai", "--url", faults.url("slow"));
    gatehouse(dir, "gateways", "default", "slow");
    let app = await openApp(dir);
    try {
      await send(app, "Tell me a long story");
      const reply = await app.$('[data-testid="message"][data-role="assistant"]');
      await reply.waitForExist({ timeout: WAIT });
      await app.waitUntil(async () => (await (await reply.$('[data-testid="message-text"]')).getText()).includes("word10"), { timeout: WAIT });
      const seen = await (await reply.$('[data-testid="message-text"]')).getText();
      const pid = execFileSync("pgrep", ["-f", `gatehouse-desktop --data-dir ${dir}`], { encoding: "utf8" }).trim().split("\n")[0];
      process.kill(Number(pid), "SIGKILL");
      await app.deleteSession().catch(() => {});
      sessions = sessions.filter((s) => s !== app);
      app = await openApp(dir);
      await (await $$t(app, "conversation-item"))[0].$("button").click();
      const again = await app.$('[data-testid="message"][data-role="assistant"]');
      await again.waitForExist({ timeout: WAIT });
      assert((await waitState(app, again, ["interrupted", "failed"])) === "interrupted", "the cut reply is interrupted");
      // The store takes deltas in batches (every 50 ms): what was on screen 250 ms before the
      // kill has been stored, in order, with nothing else in it.
      const kept = (await (await again.$('[data-testid="message-text"]')).getText()).trim();
      const same = seen.startsWith(kept) || kept.startsWith(seen.trim());
      assert(kept.includes("word5") && same, `its partial text survived: kept "${kept}", seen "${seen}"`);
      await screen(app, "09-after-crash");
    } finally {
      await faults.close();
    }
  },

  async "a gateway added in the settings answers its test, and a chat goes through it"() {
    // The real OpenAI-compatible server the test command starts (llama-cpp-python).
    const url = process.env.GATEHOUSE_TEST_OPENAI_URL;
    assert(url, "GATEHOUSE_TEST_OPENAI_URL names the OpenAI-compatible peer (scripts/e2e starts it)");
    const dir = freshDataDir();
    const app = await openApp(dir);
    await (await $t(app, "nav-settings")).click();
    await (await $t(app, "gateway-add")).click();
    await (await $t(app, "gateway-name")).setValue("llama");
    await (await $t(app, "gateway-url")).setValue(url);
    await screen(app, "10-settings-add-gateway");
    await (await $t(app, "gateway-save")).click();
    const row = await app.$('[data-testid="gateway-row"][data-name="llama"]');
    await row.waitForExist({ timeout: WAIT });
    // Saving tests it at once; the result is a sentence.
    const check = await row.$('[data-testid="gateway-check"]');
    await app.waitUntil(async () => (await check.isExisting()) && (await check.getAttribute("data-ok")) === "true" && !(await check.getText()).includes("Testing"), { timeout: WAIT, timeoutMsg: "the new gateway's test did not pass" });
    assert(/answers/.test(await check.getText()), `a sentence: ${await check.getText()}`);
    await screen(app, "11-settings-gateway-tested");
    // A bad address is refused with a sentence, and nothing is saved.
    await (await $t(app, "gateway-add")).click();
    await (await $t(app, "gateway-name")).setValue("broken");
    await (await $t(app, "gateway-url")).setValue("not a url");
    await (await $t(app, "gateway-save")).click();
    const refused = await app.$('form [data-testid="error"]');
    await refused.waitForExist({ timeout: WAIT });
    assert((await refused.getAttribute("data-code")) === "gateway.invalid", `code ${await refused.getAttribute("data-code")}`);
    assert(!(await app.$('[data-testid="gateway-row"][data-name="broken"]').isExisting()), "the bad profile was not saved");
    // The first gateway added became the default: a new chat goes to it.
    await (await $t(app, "nav-chat")).click();
    await (await $t(app, "new-conversation")).click();
    await send(app, "What is the capital of France?");
    const reply = await app.$('[data-testid="message"][data-role="assistant"]');
    await reply.waitForExist({ timeout: WAIT });
    assert((await waitState(app, reply, ["complete", "interrupted", "failed"])) === "complete", "the reply through the new gateway completed");
    const item = await $t(app, "conversation-item");
    assert((await app.execute((el) => el.innerText, item)).includes("llama"), "the conversation shows the gateway it used");
  },

  async "the settings and jobs views open"() {
    const dir = freshDataDir();
    const app = await openApp(dir);
    await (await $t(app, "nav-settings")).click();
    await (await $t(app, "gateway-row")).waitForExist({ timeout: WAIT });
    await screen(app, "12-settings");
    // A build without an update feed (this one, and any build from source) says so, and offers
    // no check that would call out.
    const update = await $t(app, "update-status");
    await update.scrollIntoView();
    assert(/Gatehouse \d+\.\d+\.\d+\. This build does not look for updates/.test(await update.getText()), `the update section: ${await update.getText()}`);
    assert(!(await app.$('[data-testid="update-check"]').isExisting()), "no update check without a feed");
    await screen(app, "12-settings-updates");
    await (await $t(app, "nav-jobs")).click();
    await screen(app, "13-jobs");
    await (await $t(app, "nav-chat")).click();
    await (await $t(app, "composer")).waitForExist({ timeout: WAIT });
  },
};

/** The release's update feed, as the release workflow publishes it, on loopback: `latest.json`
 * offering 9.9.9 with `signature` for the bundle, which is `bundle`. Counts the feed's readers. */
async function startUpdateFeed(signature, bundle) {
  const feed = { asked: 0 };
  const url = `http://127.0.0.1:${FEED_PORT}/Gatehouse.tar.gz`;
  const platforms = Object.fromEntries(["linux-x86_64", "linux-x86_64-deb", "linux-x86_64-rpm", "linux-x86_64-appimage"].map((k) => [k, { signature, url }]));
  const server = createServer((req, res) => {
    if (req.url === "/latest.json") {
      feed.asked++;
      res.end(JSON.stringify({ version: "9.9.9", notes: "Conversations in folders.", pub_date: "2026-12-01T12:00:00Z", platforms }));
    } else if (req.url === "/Gatehouse.tar.gz") {
      res.end(bundle);
    } else {
      res.statusCode = 404;
      res.end();
    }
  });
  await new Promise((ok, fail) => server.once("error", fail).listen(FEED_PORT, "127.0.0.1", ok));
  feed.close = () => new Promise((ok) => server.close(ok));
  return feed;
}

/** tauri-driver, fresh for each test: a WebKitWebDriver that a test's app took down stays down. */
async function startDriver(env = {}) {
  const driver = spawn(DRIVER, ["--port", "4444", "--native-port", "4445"], { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, ...env } });
  let log = "";
  driver.stderr.on("data", (d) => (log += d));
  // It listens within a moment; poll its status endpoint rather than sleeping blindly.
  for (let i = 0; ; i++) {
    try {
      await fetch("http://127.0.0.1:4444/status");
      break;
    } catch (e) {
      if (i > 200) throw new Error(`tauri-driver did not start: ${log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    log: () => log,
    stop: () =>
      new Promise((r) => {
        driver.once("exit", r);
        driver.kill("SIGTERM");
      }),
  };
}

tests["a command the model ran shows inline in the reply, its output folded"] = async () => {
  const dir = freshDataDir();
  const faults = await startFaultGateway();
  try {
    gatehouse(dir, "gateways", "add", "tools", "--kind", "openai", "--url", faults.url("tools"));
    // Not execFileSync: the mock gateway answers from this process.
    await promisify(execFile)(CLI, ["--data-dir", dir, "chat", "--gateway", "tools", "--tools", "Say hello from the sandbox"]);
    const app = await openApp(dir);
    await (await $t(app, "conversation-item")).$("button").click();
    const tool = await $t(app, "tool-activity");
    await tool.waitForExist({ timeout: WAIT });
    assert((await tool.getAttribute("data-status")) === "completed", `the call completed (${await tool.getAttribute("data-status")})`);
    const summary = await app.execute((el) => el.querySelector("summary").innerText, tool);
    assert(summary.includes("echo 'hello from the sandbox'"), `the command is shown: ${summary}`);
    const output = await tool.$('[data-testid="tool-output"]');
    assert(!(await output.isDisplayed()), "the output is folded");
    await (await tool.$("summary")).click();
    await output.waitForDisplayed({ timeout: WAIT });
    assert((await output.getText()).includes("hello from the sandbox"), `the output unfolds: ${await output.getText()}`);
    await screen(app, "17-tool-activity");
  } finally {
    await faults.close();
  }
};

tests["closing the window while a job runs hides it; a second launch shows it; it quits when the job ends"] = Object.assign(
  async function () {
    const dir = freshDataDir();
    await openApp(dir);
    const pid = appPid(dir);
    assert(pid, "found the app's process");
    const job = JSON.parse(gatehouse(dir, "--json", "jobs", "submit", "exec", "--", "sleep", "8")).id;
    await until(() => jobState(dir, job) === "running", "the app's pool ran the job");
    xwindow("close", pid);
    await until(() => xwindow("state", pid).startsWith("unmapped"), "the closed window was hidden");
    assert(alive(pid), "the app keeps running while its job runs");
    assert(jobState(dir, job) === "running", "the job goes on");
    // A second launch hands over to the running app (single instance) and exits.
    const second = spawnSync(APP, ["--data-dir", dir], { encoding: "utf8", timeout: WAIT, env: { ...process.env, ...this.env } });
    assert(second.status === 0, `the second launch exited at once (status ${second.status}): ${second.stderr}`);
    await until(() => xwindow("state", pid).startsWith("mapped"), "the second launch showed the first window");
    assert(appPid(dir) === pid, "still one app on this data");
    xwindow("close", pid);
    await until(() => !alive(pid), "the app quit once its job had finished", 30_000);
    assert(jobState(dir, job) === "succeeded", `the job finished rather than being cut (${jobState(dir, job)})`);
  },
  { before: sessionBus },
);

tests["the window opens again at the size it was left at"] = async () => {
  const dir = freshDataDir();
  await openApp(dir);
  let pid = appPid(dir);
  xwindow("resize", pid, 900, 640);
  await until(() => xwindow("state", pid) === "mapped 900x640", "the window took the new size");
  xwindow("close", pid); // no job runs: the app quits
  await until(() => !alive(pid), "the app quit when its window was closed with no job running");
  await closeAll(null);
  await openApp(dir);
  pid = appPid(dir);
  const state = xwindow("state", pid);
  assert(state === "mapped 900x640", `the window opened at 900x640, as it was left (${state})`);
};

tests["a window that does not paint in time is started again with WebKit's DMA-BUF renderer off"] = async () => {
  const dir = freshDataDir();
  // The watchdog's wait, cut to nothing: the first paint cannot come in time.
  const started = [];
  const start = (env) => {
    const child = spawn(APP, ["--data-dir", dir], { env: { ...process.env, GATEHOUSE_LOG: "info", ...env }, stdio: ["ignore", "ignore", "pipe"] });
    const run = { log: "" };
    child.stderr.on("data", (d) => (run.log += d));
    started.push(run);
    return run;
  };
  const stop = async () => {
    const pid = appPid(dir);
    if (!pid) return;
    process.kill(pid, "SIGTERM");
    await until(() => !alive(pid), "the app stopped");
  };
  try {
    const first = start({ GATEHOUSE_FIRST_PAINT_TIMEOUT_MS: "1" });
    await until(() => /did not paint within/.test(first.log), "the app noticed the missing first paint and said why");
    await until(() => /first paint after/.test(first.log), "the app, started again, painted").catch((e) => {
      throw new Error(`${e.message}; its log:\n${first.log}`);
    });
    assert(existsSync(join(dir, "desktop-webkit-fallback")), "the fallback is remembered in the data dir");
    const env = readFileSync(`/proc/${appPid(dir)}/environ`, "utf8").split("\0");
    assert(env.includes("WEBKIT_DISABLE_DMABUF_RENDERER=1"), "it runs with the DMA-BUF renderer off");
    await stop();
    // A later start uses the fallback at once rather than waiting for a blank window again.
    const later = start({});
    await until(() => /first paint after/.test(later.log), "a later start painted");
    assert(/using WEBKIT_DISABLE_DMABUF_RENDERER=1/.test(later.log), `a later start says it uses the fallback:\n${later.log}`);
    assert(!/did not paint within/.test(later.log), "a later start did not wait for a blank window");
  } finally {
    await stop();
  }
};

tests["a conversation exports to Markdown, all to JSON, and the JSON imports back, through the file dialogs"] = async () => {
  const dir = freshDataDir();
  gatehouse(dir, "chat", "What is the capital of France?");
  const app = await openApp(dir);
  const pid = appPid(dir);
  const out = mkdtempSync(join(tmpdir(), "gatehouse-export-"));
  const items = () => $$t(app, "conversation-item");
  await until(async () => (await items()).length === 1, "the CLI's conversation is listed");
  const open = (title) => xwindow("state", pid, title).startsWith("mapped");
  /** Answer the file dialog titled `title` as a person would, with `path` on the clipboard:
   * keys until the dialog takes them and closes — keys sent while GTK still builds the dialog
   * are dropped, and nothing outside the dialog says when it is ready. The path is pasted, in
   * one key event: typed a character at a time, GTK's completion of a crowded /tmp cut it short
   * under load ("/tmp/gatehouse-" was opened). `slash` opens an open dialog's location field
   * (and is replaced by the paste), where Ctrl+L would toggle it. */
  const answer = async (title, path, keys) => {
    await until(() => open(title), `the "${title}" dialog opened`);
    const clip = path === null ? null : spawn("xclip", ["-quiet", "-selection", "clipboard"], { stdio: ["pipe", "ignore", "ignore"] });
    clip?.stdin.end(path);
    const pasted = () => spawnSync("xclip", ["-o", "-selection", "clipboard"], { encoding: "utf8" }).stdout;
    if (clip) await until(() => pasted() === path, "the path is on the clipboard");
    try {
      await until(async () => {
        if (!open(title)) return true;
        xwindow("keys", pid, title, ...keys);
        // Given time to act on them before they are sent again (a second round reaching the
        // window under a dialog that just closed would type into the chat).
        return until(() => !open(title), "", 3000).then(() => true, () => false);
      }, `the "${title}" dialog closed`);
    } catch (e) {
      // The dialog is GTK's, outside the webview: only the screen shows what it was doing.
      xwindow("shot", "-", join(SHOTS, "FAIL-dialog.png"));
      throw e;
    } finally {
      clip?.kill();
    }
  };
  const notice = async (text) => {
    const shown = () => app.execute(() => document.querySelector('[data-testid="transfer-notice"]')?.textContent ?? "");
    await until(async () => (await shown()) === text, `the notice says "${text}"`).catch(async (e) => {
      const error = await app.execute(() => document.querySelector('[data-testid="error"]')?.textContent ?? "none");
      xwindow("shot", "-", join(SHOTS, "FAIL-dialog.png"));
      throw new Error(`${e.message}; it says "${await shown()}", the error shown: ${error}`);
    });
  };

  // One conversation, from its row's export button (shown on hover), as Markdown.
  await (await items())[0].moveTo();
  await (await $t(app, "export-conversation")).click();
  await answer("Export conversations", `${out}/capital.md`, ["ctrl+a", "ctrl+v", "Return"]);
  await notice(`Exported 1 conversation to ${out}/capital.md`);
  const md = readFileSync(join(out, "capital.md"), "utf8");
  assert(md.startsWith("# What is the capital of France?\n") && md.includes("Paris"), `the Markdown holds the conversation:\n${md}`);
  await screen(app, "20-exported");

  // Every conversation, as JSON (the name the dialog suggests).
  await (await $t(app, "export-all")).click();
  await answer("Export conversations", `${out}/all.json`, ["ctrl+a", "ctrl+v", "Return"]);
  await notice(`Exported 1 conversation to ${out}/all.json`);
  const exported = JSON.parse(readFileSync(join(out, "all.json"), "utf8"));
  assert(exported.gatehouse_export === 1 && exported.conversations.length === 1, "the JSON holds the one conversation");

  // Imported back: a second, identical conversation, listed at once.
  await (await $t(app, "import-conversations")).click();
  await answer("Import conversations", `${out}/all.json`, ["slash", "ctrl+a", "ctrl+v", "Return"]);
  await notice(`Imported 1 conversation from ${out}/all.json`);
  await until(async () => (await items()).length === 2, "the imported conversation is listed").catch(async (e) => {
    throw new Error(`${e.message}: ${(await items()).length} listed`);
  });
  const list = JSON.parse(gatehouse(dir, "--json", "chats", "list"));
  assert(list.length === 2 && list.every((c) => c.title === "What is the capital of France?"), "the CLI sees both conversations");

  // Closing a dialog without a file changes nothing and says nothing new.
  await (await $t(app, "export-all")).click();
  await answer("Export conversations", null, ["Escape"]);
  await notice(`Imported 1 conversation from ${out}/all.json`);
  rmSync(out, { recursive: true, force: true });
};

tests["the keyboard shortcuts work in the window"] = async () => {
  const dir = freshDataDir();
  gatehouse(dir, "chat", "Say hello");
  gatehouse(dir, "chat", "Say goodbye");
  const app = await openApp(dir);
  const focused = () => app.execute(() => document.activeElement?.getAttribute("data-testid"));
  const selected = () => app.execute(() => document.querySelector('[data-testid="conversation-item"][data-selected="true"]')?.dataset.id ?? null);
  const items = await app.execute(() => [...document.querySelectorAll('[data-testid="conversation-item"]')].map((e) => e.dataset.id));
  assert(items.length === 2, `two conversations listed (${items})`);
  await app.keys([Key.Ctrl, "k"]);
  await until(async () => (await focused()) === "search-input", "Ctrl+K put the cursor in the search box");
  await app.keys([Key.Alt, Key.ArrowDown]);
  await until(async () => (await selected()) === items[0], "Alt+Down opened the newest conversation");
  await app.keys([Key.Alt, Key.ArrowDown]);
  await until(async () => (await selected()) === items[1], "Alt+Down again opened the next one");
  await app.$('[data-testid="message"][data-role="assistant"]').waitForExist({ timeout: WAIT });
  await app.keys([Key.Alt, Key.ArrowUp]);
  await until(async () => (await selected()) === items[0], "Alt+Up went back");
  await app.keys([Key.Ctrl, "/"]);
  await (await $t(app, "help")).waitForDisplayed({ timeout: WAIT });
  await screen(app, "16-shortcuts");
  await app.keys([Key.Escape]);
  await (await $t(app, "help")).waitForExist({ reverse: true, timeout: WAIT });
  await app.keys([Key.Ctrl, "n"]);
  await until(async () => (await selected()) === null && (await app.$$('[data-testid="message"]')).length === 0, "Ctrl+N started a new conversation");
  assert((await focused()) === "composer", "a new conversation puts the cursor in the message box");
  await (await $t(app, "nav-settings")).click();
  await app.keys([Key.Ctrl, "l"]);
  await until(async () => (await focused()) === "composer", "Ctrl+L went back to the chat's message box");
};

// The dark theme's screens pass the same accessibility check.
tests["in the dark theme, the chat and settings read as well"] = Object.assign(
  async () => {
    const dir = freshDataDir();
    gatehouse(dir, "chat", "Show me a short Python function that adds two numbers");
    const app = await openApp(dir);
    const dark = await app.execute(() => matchMedia("(prefers-color-scheme: dark)").matches);
    assert(dark, "the window follows the system's dark preference");
    await (await $t(app, "conversation-item")).$("button").click();
    await app.$('[data-testid="message"][data-role="assistant"][data-state="complete"]').waitForExist({ timeout: WAIT });
    await screen(app, "14-dark-chat");
    await (await $t(app, "nav-settings")).click();
    await (await $t(app, "gateway-row")).waitForExist({ timeout: WAIT });
    await screen(app, "15-dark-settings");
  },
  { env: DARK },
);


// The updater as the release wires it: a build with a feed looks at start, shows the newer
// version, and installs only what its key signed (the bundle served here was swapped after
// signing). Turned off, the next start does not ask the feed.
tests["a build with an update feed shows the newer version and refuses a bundle its key did not sign"] = async () => {
  const signed = join(FEED, "Gatehouse.tar.gz");
  writeFileSync(signed, "the bundle that was signed");
  execFileSync("npx", ["tauri", "signer", "sign", "-f", join(FEED, "key"), "-p", "", signed], { cwd: root, stdio: "ignore" });
  const feed = await startUpdateFeed(readFileSync(`${signed}.sig`, "utf8"), "a bundle swapped in after signing");
  try {
    const dir = freshDataDir();
    let app = await openApp(dir, join(FEED, "gatehouse-desktop"));
    await (await $t(app, "update-dot")).waitForExist({ timeout: WAIT });
    assert(feed.asked === 1, `the app asked the feed once at start (${feed.asked})`);
    await (await $t(app, "nav-settings")).click();
    const status = await $t(app, "update-status");
    await status.scrollIntoView();
    await until(async () => (await status.getText()).includes("Gatehouse 9.9.9 is available (you have 0.1.0)."), "the settings show the newer version");
    assert((await app.$(".notes").getText()) === "Conversations in folders.", "and its notes");
    await screen(app, "12b-update-available");
    await (await $t(app, "update-install")).click();
    const refused = await app.$('[data-testid="error"]');
    await refused.waitForExist({ timeout: WAIT });
    assert((await refused.getAttribute("data-code")) === "update.failed", `code ${await refused.getAttribute("data-code")}`);
    assert(/9\.9\.9/.test(await refused.getText()) && /signature/i.test(await refused.getText()), `it says why: ${await refused.getText()}`);
    await until(async () => !(await app.$('[data-testid="update-install"]').isExisting()), "the refused update is not offered again until a new check");
    await screen(app, "12c-update-refused");
    // Turned off: the next start leaves the feed alone; Check now still asks it.
    await (await $t(app, "setting-check-updates")).click();
    await until(() => JSON.parse(gatehouse(dir, "--json", "settings", "show")).check_updates === false, "the setting is stored");
    await app.deleteSession().catch(() => {});
    sessions = sessions.filter((s) => s !== app);
    app = await openApp(dir, join(FEED, "gatehouse-desktop"));
    await (await $t(app, "nav-settings")).click();
    const again = await $t(app, "update-status");
    await again.scrollIntoView();
    assert((await again.getText()) === "Gatehouse 0.1.0.", `nothing found yet: ${await again.getText()}`);
    assert(feed.asked === 1 && !(await app.$('[data-testid="update-dot"]').isExisting()), `no check at start when turned off (${feed.asked})`);
    await (await $t(app, "update-check")).click();
    await until(async () => feed.asked === 2 && (await again.getText()).includes("9.9.9 is available"), "Check now asked the feed");
  } finally {
    await feed.close();
  }
};

/** Rows of the jobs table, as [id, state]. */
const rows = (app) => app.execute(() => [...document.querySelectorAll('[data-testid="job-row"]')].map((r) => [Number(r.dataset.id), r.dataset.state]));
const rowState = async (app, id) => (await rows(app)).find(([i]) => i === id)?.[1];

tests["jobs submitted in the app run while a chat keeps streaming"] = async () => {
  const dir = freshDataDir();
  const faults = await startFaultGateway();
  try {
    gatehouse(dir, "gateways", "add", "slow", "--kind", "openai", "--url", faults.url("slow"));
    const app = await openApp(dir);
    await (await $t(app, "gateway-picker")).selectByAttribute("value", "slow");
    await send(app, "Tell me a long story");
    const reply = await app.$('[data-testid="message"][data-role="assistant"]');
    await reply.waitForExist({ timeout: WAIT });
    await app.waitUntil(async () => (await (await reply.$('[data-testid="message-text"]')).getText()).includes("word3"), { timeout: WAIT });
    const before = (await (await reply.$('[data-testid="message-text"]')).getText()).length;

    await (await $t(app, "nav-jobs")).click();
    await (await $t(app, "jobs-table")).waitForExist({ timeout: WAIT });
    await screen(app, "18-jobs-empty");
    await (await $t(app, "new-job")).click();
    await (await $t(app, "new-job-text")).setValue("What is the capital of France?");
    await screen(app, "19-new-job");
    await (await $t(app, "new-job-submit")).click();
    await (await $t(app, "new-job")).click();
    await (await $t(app, "new-job-exec")).click();
    await (await $t(app, "new-job-command")).setValue(`echo "hello from a job"`);
    await (await $t(app, "new-job-submit")).click();
    // The prompt job is the built-in model's reply in a debug build: up to two minutes.
    await until(async () => (await rows(app)).length === 2 && (await rows(app)).every(([, s]) => s === "succeeded"), "both jobs succeeded in the table", 2 * WAIT);
    const [[execId], [promptId]] = await rows(app);
    assert(JSON.parse(gatehouse(dir, "--json", "jobs", "show", String(promptId))).kind === "prompt", "the older job is the prompt");
    // The exec job was selected when submitted: its output is shown.
    await until(async () => (await (await $t(app, "job-output")).getText()).includes("hello from a job"), "the exec job's output is shown");
    await app.$(`[data-testid="job-row"][data-id="${promptId}"]`).click();
    await until(async () => (await (await $t(app, "job-output")).getText()).trim().length > 0, "the prompt job's reply is shown");
    await app.$(`[data-testid="job-row"][data-id="${execId}"]`).click();
    await screen(app, "20-jobs-done");

    await (await $t(app, "nav-chat")).click();
    const again = await app.$('[data-testid="message"][data-role="assistant"]');
    const after = (await (await again.$('[data-testid="message-text"]')).getText()).length;
    assert(after > before, `the reply kept streaming meanwhile (${before} → ${after} characters)`);
    assert(["streaming", "complete"].includes(await again.getAttribute("data-state")), "the reply is still going or done, not cut");
  } finally {
    await faults.close();
  }
};

tests["five jobs from the CLI appear and finish in the jobs view; a running one is canceled; the pool pauses"] = async () => {
  const dir = freshDataDir();
  const app = await openApp(dir);
  await (await $t(app, "nav-jobs")).click();
  await (await $t(app, "jobs-table")).waitForExist({ timeout: WAIT });
  gatehouse(dir, "exec", "policy", "add", "allow", "sh", "--any-args");
  const ids = [];
  for (const secs of ["1", "1", "1", "1"]) ids.push(JSON.parse(gatehouse(dir, "--json", "jobs", "submit", "exec", "--", "sleep", secs)).id);
  // The long one prints a line every 100 ms for a minute.
  const ticks = "i=0; while [ $i -lt 600 ]; do i=$((i+1)); echo tick $i; sleep 0.1; done";
  ids.push(JSON.parse(gatehouse(dir, "--json", "jobs", "submit", "exec", "--", "sh", "-c", ticks)).id);
  await until(async () => (await rows(app)).length === 5, "the CLI's five jobs appear");
  await until(async () => (await Promise.all(ids.slice(0, 4).map((id) => rowState(app, id)))).every((s) => s === "succeeded"), "four finish");
  const long = ids[4];
  await until(async () => (await rowState(app, long)) === "running", "the long one runs");
  await app.$(`[data-testid="job-row"][data-id="${long}"]`).click();
  // Its output streams in while it runs: the last tick shown keeps growing.
  const lastTick = async () => Number(/tick (\d+)\s*$/.exec(await (await $t(app, "job-output")).getText())?.[1] ?? 0);
  await until(async () => (await lastTick()) >= 3, "the running job's output shows");
  const seen = await lastTick();
  await until(async () => (await lastTick()) >= seen + 5 && (await rowState(app, long)) === "running", "more of its output follows while it runs");
  await screen(app, "21-jobs-running");
  await (await $t(app, "job-cancel")).click();
  await until(async () => (await rowState(app, long)) === "canceled", "the canceled job shows as canceled");
  assert(jobState(dir, long) === "canceled", "the engine has it canceled");
  // Retried, it runs again from the start; then canceled for good.
  await (await $t(app, "job-retry")).click();
  await until(async () => (await rowState(app, long)) === "running", "the retried job runs again");
  assert(JSON.parse(gatehouse(dir, "--json", "jobs", "show", String(long))).attempts >= 2, "a second attempt");
  await (await $t(app, "job-cancel")).click();
  await until(async () => (await rowState(app, long)) === "canceled", "canceled again");

  await (await $t(app, "job-filter")).selectByAttribute("value", "succeeded");
  await until(async () => (await rows(app)).length === 4 && (await rows(app)).every(([, s]) => s === "succeeded"), "the filter shows the succeeded only");
  await (await $t(app, "job-filter")).selectByAttribute("value", "");

  const pause = await $t(app, "pool-pause");
  assert((await pause.getAttribute("data-paused")) === "false", "the pool runs");
  await pause.click();
  await until(async () => (await pause.getAttribute("data-paused")) === "true", "the button says paused");
  assert(JSON.parse(gatehouse(dir, "--json", "pool", "status")).paused, "every pool is paused");
  const held = JSON.parse(gatehouse(dir, "--json", "jobs", "submit", "exec", "--", "true")).id;
  await until(async () => (await rowState(app, held)) === "queued", "a new job waits while paused");
  await screen(app, "22-jobs-paused");
  await pause.click();
  await until(async () => (await rowState(app, held)) === "succeeded", "resumed, it runs");
};

// The queue in a PostgreSQL several machines share (scripts/peers/postgres; each data directory
// stands for a machine): two `gatehouse worker`s and the app drain what a third machine submits,
// the jobs view shows all of it, and a cancel from the window stops a job another machine runs.
tests["on a shared PostgreSQL, the jobs view shows what other machines submit and run, and cancels there"] = Object.assign(
  async function () {
    const db = this.database;
    const on = (dir, ...args) => gatehouse(dir, "--database", db, ...args);
    const [a, b, submitter] = [freshDataDir(), freshDataDir(), freshDataDir()];
    const workers = [a, b].map((dir) => spawn(CLI, ["--data-dir", dir, "--database", db, "worker", "--workers", "2", "--grace", "1"], { stdio: "ignore" }));
    try {
      const app = await openApp(freshDataDir());
      await (await $t(app, "nav-jobs")).click();
      await (await $t(app, "jobs-table")).waitForExist({ timeout: WAIT });
      const shared = await $t(app, "pool-shared");
      await shared.waitForExist({ timeout: WAIT });
      const where = db.replace(/^postgres:\/\/[^@]*@/, "");
      assert((await shared.getText()).includes(`shared queue on ${where}`), `the header says where the queue is: ${await shared.getText()}`);
      // The app and the two workers: three pools on one queue.
      await until(async () => (await app.$(".counts").getText()).includes("3 pools"), "three pools in the header");
      const ids = [];
      for (let i = 0; i < 6; i++) ids.push(JSON.parse(on(submitter, "--json", "jobs", "submit", "exec", "--", "sleep", "1")).id);
      await until(async () => (await rows(app)).length === 6, "the third machine's six jobs appear");
      // The worker column names the pool (`host:pid:nonce`) while a job runs; seen on the way.
      const pools = new Set();
      let shot = false;
      await until(async () => {
        const owners = await app.execute(() => [...document.querySelectorAll('[data-testid="job-row"] .worker')].map((w) => w.title));
        for (const o of owners) if (o) pools.add(o.split(":").slice(0, 2).join(":"));
        if (pools.size >= 2 && !shot) shot = await screen(app, "23-jobs-shared").then(() => true);
        return (await Promise.all(ids.map((id) => rowState(app, id)))).every((s) => s === "succeeded");
      }, "all six finish");
      assert(pools.size >= 2, `more than one machine ran them: ${[...pools].join(", ")}`);

      // Canceled in the window; the machine running it stops it.
      const long = JSON.parse(on(submitter, "--json", "jobs", "submit", "exec", "--", "sleep", "60")).id;
      await until(async () => (await rowState(app, long)) === "running", "the long one runs somewhere");
      await app.$(`[data-testid="job-row"][data-id="${long}"]`).click();
      await (await $t(app, "job-cancel")).click();
      await until(async () => (await rowState(app, long)) === "canceled", "the canceled job shows as canceled");
      assert(JSON.parse(on(submitter, "--json", "jobs", "show", String(long))).state === "canceled", "the shared queue has it canceled");

      // The commands the other machines ran are in this app's audit log, from the shared
      // database, each with the machine that ran it.
      await (await $t(app, "nav-settings")).click();
      await until(async () => {
        const audited = await app.execute(() =>
          [...document.querySelectorAll('[data-testid="audit-row"][data-host]')].map((r) => r.innerText).filter((t) => /job:\d+ on /.test(t)),
        );
        return ids.every((id) => audited.some((t) => t.includes(`job:${id} on `)));
      }, "the audit shows every job's command and its machine");
      await app.execute(() => document.querySelector('[data-testid="audit-row"][data-host]').scrollIntoView({ block: "center" }));
      await screen(app, "23b-audit-shared");
    } finally {
      for (const w of workers) w.kill("SIGINT");
    }
  },
  {
    // A database of this test's own on the test cluster, its URL given to the app as a person
    // would: GATEHOUSE_DATABASE_URL.
    before() {
      const cluster = process.env.GATEHOUSE_TEST_DATABASE_URL;
      if (!cluster) throw new Error("GATEHOUSE_TEST_DATABASE_URL is not set (scripts/e2e starts scripts/peers/postgres)");
      const name = `gatehouse_e2e_${process.pid}`;
      for (const sql of [`DROP DATABASE IF EXISTS ${name}`, `CREATE DATABASE ${name}`]) execFileSync("psql", [cluster, "-qc", sql]);
      this.database = `${cluster.slice(0, cluster.lastIndexOf("/"))}/${name}`;
      return { env: { GATEHOUSE_DATABASE_URL: this.database } };
    },
  },
);

/** Submit `n` exec jobs (`true`) through the app's own command, 32 at a time (a CLI process
 * each would take minutes); resolves to null, or the first error. */
const submitInPage = (app, n) =>
  app.executeAsync((n, done) => {
    let next = 0, finished = 0, failed = false;
    const one = () => {
      if (next >= n || failed) return;
      next++;
      window.__TAURI_INTERNALS__.invoke("submit_job", { job: { kind: "exec", program: "true", args: [] }, priority: 0 }).then(
        () => (++finished === n ? done(null) : one()),
        (e) => ((failed = true), done(JSON.stringify(e))),
      );
    };
    for (let i = 0; i < 32; i++) one();
  }, n);

tests["ten thousand jobs: the table stays virtualised, the oldest is a scroll away, a filter answers"] = async () => {
  const N = 10_000;
  const dir = freshDataDir();
  gatehouse(dir, "pool", "pause"); // they stay queued: the table is what is tested
  const app = await openApp(dir);
  await (await $t(app, "nav-jobs")).click();
  await (await $t(app, "jobs-table")).waitForExist({ timeout: WAIT });
  await app.setTimeout({ script: 5 * WAIT });
  const error = await submitInPage(app, N);
  assert(error === null, `every submit was taken: ${error}`);
  const queued = () => app.execute(() => document.querySelector('.count[data-state="queued"]')?.textContent.trim());
  await until(async () => (await queued()) === `${N.toLocaleString("en")} queued`, `the counts say ${N.toLocaleString("en")} queued`, 2 * WAIT);
  // The counts and the rows come by different paths (a count query, the feed's news applied
  // once a frame): the newest row follows within a feed tick or two.
  await until(async () => (await rows(app))[0]?.[0] === N, `the newest job (${N}) is at the top`);
  const inPage = await rows(app);
  assert(inPage.length > 5 && inPage.length < 100, `a screenful of rows is in the page, not ${N}: ${inPage.length}`);
  // Down to the end: the first job submitted is there.
  await app.execute(() => {
    let el = document.querySelector('[data-testid="job-row"]');
    while (el && !/auto|scroll/.test(getComputedStyle(el).overflowY)) el = el.parentElement;
    el.scrollTop = el.scrollHeight;
  });
  await until(async () => (await rows(app)).some(([id]) => id === 1), "scrolled to the end, the oldest job shows");
  assert((await rows(app)).length < 100, "still a screenful of rows at the end");
  await screen(app, "22b-jobs-10k");
  await (await $t(app, "job-filter")).selectByAttribute("value", "succeeded");
  await until(async () => (await rows(app)).length === 0 && (await (await $t(app, "jobs-table")).getText()).includes("No succeeded jobs"), "the succeeded filter shows none");
  await (await $t(app, "job-filter")).selectByAttribute("value", "queued");
  await until(async () => {
    const r = await rows(app);
    return r.length > 5 && r[0][0] === N && r.every(([, s]) => s === "queued");
  }, "the queued filter shows them again, newest first");
};

tests["an asked command is approved in the dialog, the model's is denied, and the audit shows both"] = async () => {
  const dir = freshDataDir();
  const faults = await startFaultGateway();
  try {
    gatehouse(dir, "gateways", "add", "asker", "--kind", "openai", "--url", faults.url("tools-ask"));
    const app = await openApp(dir);
    // A job from a script: `touch` is asked about; the job waits for an answer when it runs.
    const job = JSON.parse(gatehouse(dir, "--json", "jobs", "submit", "exec", "--", "touch", "approved-in-the-dialog")).id;
    const dialog = await app.$('[data-testid="approval-dialog"][data-program="touch"]');
    await dialog.waitForExist({ timeout: WAIT, timeoutMsg: "the job's question opened the dialog" });
    const text = await dialog.getText();
    assert(text.includes("approved-in-the-dialog") && text.includes(`job #${job}`) && /no rule covers/.test(text), `the dialog says what, who and why: ${text}`);
    await screen(app, "23-approval");
    await (await $t(app, "approval-allow-once")).click();
    await dialog.waitForExist({ reverse: true, timeout: WAIT });
    await until(() => jobState(dir, job) === "succeeded", "the approved job ran");
    assert(existsSync(join(dir, "workspace/approved-in-the-dialog")), "its file is there");

    // The model asks for `touch` in a chat: the call shows waiting, the dialog opens; denied.
    await (await $t(app, "gateway-picker")).selectByAttribute("value", "asker");
    await (await $t(app, "tools-toggle")).click();
    await until(async () => (await (await $t(app, "tools-toggle")).getAttribute("data-on")) === "true", "the model is offered commands");
    await send(app, "Make a file");
    // The reply re-renders as it streams: read the call afresh each time.
    const tool = () => app.execute(() => {
      const el = document.querySelector('[data-testid="tool-activity"]');
      return el && { status: el.dataset.status, text: el.innerText, summary: el.querySelector("summary").innerText };
    });
    await until(async () => (await tool()) !== null, "the model's call shows in the chat");
    await app.$('[data-testid="approval-dialog"][data-program="touch"]').waitForExist({ timeout: WAIT });
    await until(async () => (await tool())?.status === "running" && (await tool()).text.includes("waiting for your approval"), "the chat shows the call waiting for approval");
    await screen(app, "24-approval-from-chat");
    await (await $t(app, "approval-deny")).click();
    await until(async () => (await tool())?.status === "refused", "the call is refused");
    const { summary } = await tool();
    assert(/blocked by policy: a person declined it/.test(summary), `the chat says it was blocked and why: ${summary}`);
    await app.$('[data-testid="message"][data-role="assistant"][data-state="complete"]').waitForExist({ timeout: WAIT });
    assert(!existsSync(join(dir, "workspace/made-by-the-model")), "the model's command did not run");
    await screen(app, "25-denied-in-chat");

    // `gatehouse chat --tools` from a script (no terminal to ask on) waits for an answer given
    // here; it is allowed for a while from the dialog, and the model's command runs.
    const cliChat = promisify(execFile)(CLI, ["--data-dir", dir, "chat", "--gateway", "asker", "--tools", "--approval-wait", "60", "Make a file"]);
    const fromCli = await app.$('[data-testid="approval-dialog"][data-program="touch"]');
    await fromCli.waitForExist({ timeout: WAIT, timeoutMsg: "the CLI chat's question opened the dialog" });
    const asked = await fromCli.getText();
    assert(asked.includes("made-by-the-model") && /model/i.test(asked), `the dialog says the model asks for touch: ${asked}`);
    await (await $t(app, "approval-allow-timed")).click();
    await fromCli.waitForExist({ reverse: true, timeout: WAIT });
    const { stderr } = await cliChat;
    assert(existsSync(join(dir, "workspace/made-by-the-model")), `the model's command ran once allowed: ${stderr}`);
    assert(/\[tool\] .*touch/.test(stderr), `the CLI shows the call: ${stderr}`);

    await (await $t(app, "nav-settings")).click();
    const approved = await app.$('[data-testid="audit-row"][data-decision="approved"][data-program$="/touch"]');
    const denied = await app.$('[data-testid="audit-row"][data-decision="denied"][data-program$="/touch"]');
    await approved.waitForExist({ timeout: WAIT, timeoutMsg: "the audit shows the approved command" });
    await denied.waitForExist({ timeout: WAIT, timeoutMsg: "the audit shows the denied command" });
    await (await $t(app, "audit-filter-decision")).selectByAttribute("value", "denied");
    await until(async () => (await $$t(app, "audit-row")).length === 1, "the audit filters by decision");
    // By who asked: the model twice (denied in the window, allowed for the CLI's chat), a job once.
    const auditRows = () => app.execute(() => [...document.querySelectorAll('[data-testid="audit-row"]')].map((r) => r.dataset.decision));
    await (await $t(app, "audit-filter-decision")).selectByAttribute("value", "");
    await (await $t(app, "audit-filter-requester")).selectByAttribute("value", "model");
    await until(async () => (await auditRows()).sort().join() === "approved,denied", "the audit filters by requester: the model's two");
    await (await $t(app, "audit-filter-requester")).selectByAttribute("value", "job");
    await until(async () => (await auditRows()).join() === "approved", "the audit filters by requester: the job's one");
    await (await $t(app, "audit-filter-requester")).selectByAttribute("value", "");
    await (await $t(app, "audit-filter-program")).setValue("no-such-program");
    await until(async () => (await auditRows()).length === 0, "the audit filters by program");
    await (await $t(app, "audit-filter-program")).setValue("touch");
    await until(async () => (await auditRows()).length === 3, "the three touch commands");
    await (await $t(app, "audit-filter-decision")).selectByAttribute("value", "denied");
    await until(async () => (await auditRows()).length === 1, "the denied one again");
    // A rule added here holds for the next command.
    await (await $t(app, "policy-action")).selectByAttribute("value", "deny");
    await (await $t(app, "policy-program")).setValue("touch");
    await (await $t(app, "policy-add")).click();
    await until(() => app.execute(() => [...document.querySelectorAll('[data-testid="policy-row"][data-action="deny"]')].some((r) => r.innerText.includes("/touch"))), "the new rule is listed");
    // Found afresh: the filters above re-rendered the list.
    await app.execute(() => document.querySelector('[data-testid="audit-row"][data-decision="denied"]').scrollIntoView({ block: "center" }));
    await screen(app, "26-settings-exec");
    let refused = "";
    try {
      gatehouse(dir, "jobs", "submit", "exec", "--", "touch", "x");
    } catch (e) {
      refused = String(e.stderr);
    }
    assert(/blocked by policy/.test(refused), `the CLI is refused by the new rule: ${refused}`);
  } finally {
    await faults.close();
  }
};

/** A session bus with the desktop's side on it: a tray host and a notification server (desktop-bus.py). */
function desktopBus() {
  const bus = sessionBus();
  const peer = spawn(PYTHON, [join(root, "tests/e2e/desktop-bus.py")], { env: { ...process.env, ...bus.env }, stdio: ["ignore", "pipe", "inherit"] });
  const seen = [];
  let rest = "";
  peer.stdout.on("data", (d) => {
    const lines = (rest + d).split("\n");
    rest = lines.pop();
    for (const l of lines) if (l.trim()) seen.push(JSON.parse(l));
  });
  return { env: bus.env, seen, after: () => (peer.kill(), bus.after()) };
}

tests["the tray shows the pool over D-Bus, opens the jobs window, and asks before quitting"] = Object.assign(
  async function () {
    const { seen, env } = this.desk;
    const dir = freshDataDir();
    const app = await openApp(dir);
    const pid = appPid(dir);
    await until(() => seen.some((e) => e.item), "the tray icon registered with the tray host");
    const { bus, path } = seen.find((e) => e.item).item;
    const tray = (...args) => execFileSync(PYTHON, [join(root, "tests/e2e/tray.py"), bus, path, ...args], { encoding: "utf8", env: { ...process.env, ...env } });
    const read = () => JSON.parse(tray("read"));
    const idle = read();
    assert(idle.tooltip.title === "Gatehouse" && idle.tooltip.description === "0 running, 0 queued", `idle tooltip: ${JSON.stringify(idle.tooltip)}`);
    const labels = idle.menu.map((m) => m.label);
    for (const l of ["Open chat", "Open jobs", "Pause the pool", "Quit Gatehouse"]) assert(labels.includes(l), `the menu has ${l}: ${labels}`);

    const ids = [1, 2].map(() => JSON.parse(gatehouse(dir, "--json", "jobs", "submit", "exec", "--", "sleep", "60")).id);
    await until(() => read().tooltip.description === "2 running, 0 queued", "the tooltip counts the running jobs");
    const pool = JSON.parse(gatehouse(dir, "--json", "pool", "status"));
    assert(pool.jobs.running === 2 && !pool.jobs.queued, `the counts match the pool: ${JSON.stringify(pool.jobs)}`);
    const busy = read();
    assert(busy.icon !== idle.icon, "the icon shows busy");
    assert(busy.menu.some((m) => m.label === `#${ids[1]} running — sleep 60`), `the menu lists the jobs: ${busy.menu.map((m) => m.label)}`);

    tray("click", "Pause the pool");
    await until(() => JSON.parse(gatehouse(dir, "--json", "pool", "status")).paused, "the menu paused the pool");
    await until(() => read().menu.some((m) => m.label === "Resume the pool"), "the menu offers to resume");
    tray("click", "Resume the pool");
    await until(() => !JSON.parse(gatehouse(dir, "--json", "pool", "status")).paused, "and resumed it");

    // A job that fails turns the icon to its third look, apart from idle and busy.
    const failing = JSON.parse(gatehouse(dir, "--json", "jobs", "submit", "exec", "--", "sleep", "not-a-number")).id;
    await until(() => jobState(dir, failing) === "failed", "the bad job failed");
    await until(() => ![idle.icon, busy.icon].includes(read().icon), "the icon shows that something failed");
    assert(read().menu.some((m) => m.label.startsWith(`#${failing} failed`)), `the menu lists the failure: ${read().menu.map((m) => m.label)}`);

    // A question waits (the tray asks for attention), and its job holds a worker.
    const asked = JSON.parse(gatehouse(dir, "--json", "jobs", "submit", "exec", "--", "touch", "asked")).id;
    await until(() => read().status === "NeedsAttention", "the icon asks for attention");
    assert(read().menu.some((m) => m.label === "Approve? touch asked"), "the menu lists the question");

    // A job's entry opens the small jobs window on that job, with the question waiting there too.
    tray("click", `#${ids[0]} `);
    await until(() => xwindow("state", pid, "Gatehouse — Jobs").startsWith("mapped"), "the jobs window opened");
    const main = await app.getWindowHandle();
    await until(async () => (await app.getWindowHandles()).length === 2, "WebDriver sees the jobs window");
    await app.switchToWindow((await app.getWindowHandles()).find((h) => h !== main));
    await until(async () => (await app.getTitle()) === "Gatehouse — Jobs", "the jobs window is titled so");
    await app.$(`[data-testid="job-row"][data-id="${ids[0]}"][aria-selected="true"]`).waitForExist({ timeout: WAIT, timeoutMsg: "the job is selected in the jobs window" });
    assert(await (await $t(app, "job-output")).isExisting(), "its output pane is open");
    await app.$('[data-testid="approval-dialog"][data-program="touch"]').waitForExist({ timeout: WAIT, timeoutMsg: "the question is asked in the jobs window" });
    await screen(app, "27-jobs-window");

    // Quit from the tray while jobs run: the window asks; "quit now" re-queues them.
    tray("click", "Quit Gatehouse");
    await app.switchToWindow(main);
    await app.$('[data-testid="approval-dialog"]').waitForExist({ timeout: WAIT });
    const ask = await $t(app, "quit-dialog");
    await ask.waitForExist({ timeout: WAIT });
    // The two sleeps, and the `touch` job holding its worker while it waits for an answer.
    assert((await ask.getText()).includes("3 jobs are running"), `it says what runs: ${await ask.getText()}`);
    await screen(app, "28-quit");
    // The window goes away under the click: WebDriver may report the click itself as failed.
    await (await $t(app, "quit-now")).click().catch(() => {});
    await until(() => !alive(pid), "the app quit", 30_000);
    for (const id of ids) {
      const job = JSON.parse(gatehouse(dir, "--json", "jobs", "show", String(id)));
      assert(job.state === "queued", `job ${id} went back to the queue (${job.state})`);
    }

    // Once more, choosing to wait: the windows go, the app stays until its job has finished.
    for (const id of [...ids, asked]) gatehouse(dir, "jobs", "cancel", String(id));
    const items = seen.filter((e) => e.item).length;
    await app.deleteSession().catch(() => {}); // the driver holds one session at a time
    const again = await openApp(dir);
    const pid2 = appPid(dir);
    await until(() => seen.filter((e) => e.item).length > items, "the new tray icon registered");
    const item2 = seen.filter((e) => e.item).at(-1).item;
    const tray2 = (...args) => execFileSync(PYTHON, [join(root, "tests/e2e/tray.py"), item2.bus, item2.path, ...args], { encoding: "utf8", env: { ...process.env, ...env } });
    const short = JSON.parse(gatehouse(dir, "--json", "jobs", "submit", "exec", "--", "sleep", "8")).id;
    await until(() => jobState(dir, short) === "running", "a short job runs");
    tray2("click", "Quit Gatehouse");
    await (await $t(again, "quit-wait")).waitForExist({ timeout: WAIT });
    // Not awaited: with the window hidden, the driver answers the click only when the app is gone.
    const clicked = (await $t(again, "quit-wait")).click().catch(() => {});
    await until(() => xwindow("state", pid2).startsWith("unmapped"), "the window went away");
    assert(alive(pid2) && jobState(dir, short) === "running", "the app waits while its job runs");
    await until(() => !alive(pid2), "the app quit once the job was done", 30_000);
    await clicked;
    assert(jobState(dir, short) === "succeeded", `the job finished before the app quit (${jobState(dir, short)})`);
  },
  {
    before() {
      const desk = desktopBus();
      this.desk = desk;
      return desk;
    },
  },
);

tests["while no window is shown, a failed job, a finished one and a waiting command are announced"] = Object.assign(
  async function () {
    const { seen } = this.desk;
    const dir = freshDataDir();
    // Started directly, as a person would (no WebDriver: hiding the window is the point).
    const child = spawn(APP, ["--data-dir", dir], { env: { ...process.env, ...this.desk.env }, stdio: ["ignore", "ignore", "pipe"] });
    let log = "";
    child.stderr.on("data", (d) => (log += d));
    try {
      await until(() => appPid(dir) && xwindow("state", appPid(dir)).startsWith("mapped"), "the window is shown");
      const pid = appPid(dir);
      const long = JSON.parse(gatehouse(dir, "--json", "jobs", "submit", "exec", "--", "sleep", "60")).id;
      await until(() => jobState(dir, long) === "running", "a job runs");
      // Shown: nothing is announced.
      const shown = JSON.parse(gatehouse(dir, "--json", "jobs", "submit", "exec", "--", "false")).id;
      await until(() => jobState(dir, shown) === "failed", "a job failed while the window was shown");
      xwindow("close", pid);
      await until(() => xwindow("state", pid).startsWith("unmapped"), "the closed window was hidden (a job runs)");
      const hidden = JSON.parse(gatehouse(dir, "--json", "jobs", "submit", "exec", "--", "false")).id;
      await until(() => seen.some((e) => e.notification?.summary === `Job #${hidden} failed`), "a notification says the job failed");
      assert(!seen.some((e) => e.notification?.summary === `Job #${shown} failed`), "no notification while the window was shown");
      const failed = seen.find((e) => e.notification?.summary === `Job #${hidden} failed`).notification;
      assert(failed.body.includes("exited with status 1"), `it says why: ${failed.body}`);
      gatehouse(dir, "jobs", "submit", "exec", "--", "touch", "asked");
      await until(() => seen.some((e) => e.notification?.summary === "A command waits for your approval" && e.notification.body.includes("touch asked")), "a notification says a command waits");
      // Turned off in the settings: no more.
      gatehouse(dir, "settings", "set", "notify-failed", "off");
      const quiet = JSON.parse(gatehouse(dir, "--json", "jobs", "submit", "exec", "--", "false")).id;
      await until(() => jobState(dir, quiet) === "failed", "another job failed");
      const done = JSON.parse(gatehouse(dir, "--json", "jobs", "submit", "exec", "--", "true")).id;
      await until(() => seen.some((e) => e.notification?.summary === `Job #${done} finished`), "a finished job is announced");
      assert(!seen.some((e) => e.notification?.summary === `Job #${quiet} failed`), "a failure is not announced once turned off");
      gatehouse(dir, "jobs", "cancel", String(long));
    } catch (e) {
      // A panic's own lines say why; the backtrace after them rarely does.
      const lines = log.split("\n");
      const at = lines.findIndex((l) => l.includes("panicked at"));
      const shown = at >= 0 ? lines.slice(Math.max(0, at - 2), at + 3) : lines.slice(-8);
      // CI met GTK failing to open the display once (2026-12-05): say what the X server was doing.
      const x = spawnSync("xdpyinfo", [], { encoding: "utf8" });
      const conns = spawnSync("sh", ["-c", "ss -x | grep -c X11-unix"], { encoding: "utf8" }).stdout.trim();
      const server = x.status === 0 ? "answers" : `does not answer (${(x.stderr || x.error?.message || "").trim()})`;
      throw new Error(`${e.message}\n     X server on ${process.env.DISPLAY}: ${server}; ${conns} connections\n     app log: ${shown.join("\n     ")}`);
    } finally {
      child.kill("SIGTERM");
      await until(() => !appPid(dir), "the app stopped");
    }
  },
  {
    before() {
      const desk = desktopBus();
      this.desk = desk;
      return desk;
    },
  },
);

async function main() {
  let failed = 0;
  for (const [name, test] of Object.entries(tests)) {
    if (only.length && !only.some((o) => name.includes(o))) continue;
    const t0 = Date.now();
    // A test may set the app's environment (the driver passes its own on to the app).
    // A test may set up something of its own first (a session bus), undone after it.
    const ctx = test.before ? test.before() : {};
    test.env = { ...test.env, ...ctx.env };
    const driver = await startDriver(test.env);
    try {
      await test.call(test);
      await closeAll(null);
      console.log(`ok   ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    } catch (e) {
      failed++;
      await closeAll(Object.keys(tests).indexOf(name) + 1);
      console.log(`FAIL ${name}\n     ${String(e?.stack ?? e).split("\n").slice(0, 6).join("\n     ")}`);
      const log = driver.log().split("\n").filter((l) => l && !/^\s+(\d+:|at )/.test(l)).slice(-(Number(process.env.E2E_LOG_LINES) || 8)).join("\n     ");
      if (log) console.log(`     tauri-driver said:\n     ${log}`);
    } finally {
      await driver.stop();
      ctx.after?.();
    }
  }
  console.log(failed ? `${failed} end-to-end test(s) failed` : "all end-to-end tests passed");
  process.exit(failed ? 1 : 0);
}

await main();

// The desktop benchmarks (issue: desktop part 1). Prints figures; asserts nothing about time.
// Run by scripts/bench-desktop, which builds both apps in release and starts Xvfb.
//
// 1. Start to first paint, Gatehouse against a bare Tauri app (one empty window, same Tauri):
//    both log "first paint after N ms" when their page has painted two frames. Gatehouse's
//    first frame is its outline (index.html); the mounted app's first frame is reported too.
// 2. Resident memory at rest, 10 s after the first paint, of all of an app's processes together
//    (the app, WebKitWebProcess, WebKitNetworkProcess).
// 3. The token path: a gateway of the benchmark's own streams N tokens at a fixed rate; the
//    page notes when each token is painted. Latency = painted − written by the gateway (same
//    machine, same clock), p50/p95; the longest frame while it streams; the text must match.
// 4. Opening a conversation of 10,000 messages: click to its newest message painted; then
//    scrolling up through it (frame lengths, and how far it got).

import { spawn, execFileSync, execFile } from "node:child_process";
import { promisify } from "node:util";
import { mkdtempSync, readFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import http from "node:http";
import { remote } from "webdriverio";

const run = promisify(execFile);
const root = resolve(fileURLToPath(new URL("../..", import.meta.url)));
const APP = process.env.GATEHOUSE_APP ?? join(root, "target/release/gatehouse-desktop");
const BARE = process.env.BARE_APP ?? join(root, "target/release/gatehouse-bench-bare");
const CLI = process.env.GATEHOUSE_CLI ?? join(root, "target/release/gatehouse");
const DRIVER = join(root, ".tools/bin/tauri-driver");
const MODEL = process.env.GATEHOUSE_TEST_MODEL;
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
// Gatehouse turns WebKit's compositing off by itself when there is no GPU render node (see
// prepare_webkit in src-tauri/src/windows.rs); the bare app is given the same setting, so the
// two are compared on the same renderer.
const NO_GPU = !(() => {
  try {
    return readdirSync("/dev/dri").some((f) => f.startsWith("renderD"));
  } catch {
    return false;
  }
})();
const SAME_WEBKIT = NO_GPU && !process.env.WEBKIT_DISABLE_COMPOSITING_MODE ? { WEBKIT_DISABLE_COMPOSITING_MODE: "1" } : {};
if (NO_GPU) console.log("no GPU render node: both apps run with WEBKIT_DISABLE_COMPOSITING_MODE=1, as Gatehouse picks by itself");

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];
const now = () => performance.timeOrigin + performance.now();

function dataDir() {
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-bench-"));
  if (MODEL) execFileSync(CLI, ["--data-dir", dir, "models", "add", MODEL, "--name", "SmolLM2-135M-Instruct.Q4_1"], { stdio: "ignore" });
  return dir;
}

/** Start an app; resolves with the process and the ms from spawn to its first-paint line. */
function launch(bin, args) {
  return new Promise((resolveLaunch, reject) => {
    // Wall clock on both sides: the page says when it painted (its IPC call may be served
    // later, once Gatehouse's engine is open).
    const t0 = Date.now();
    const p = spawn(bin, args, { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, ...SAME_WEBKIT, GATEHOUSE_LOG: "info" } });
    let buf = "";
    p.stderr.on("data", (d) => {
      buf += d;
      const painted = buf.match(/first paint after (\d+) ms \(at (\d+)\)(?:, app ready after (\d+) ms)?/);
      if (painted) {
        buf = "";
        const [, first, at, ready] = painted.map(Number);
        // Gatehouse paints its outline first, then the mounted app: both are kept.
        resolveLaunch({ p, ms: at - t0, readyMs: ready ? at - first + ready - t0 : undefined });
      }
    });
    p.on("exit", (code) => reject(new Error(`${bin} exited (${code}) before painting`)));
    setTimeout(() => reject(new Error(`${bin} did not paint within 60 s`)), 60_000);
  });
}

async function stop(p) {
  p.removeAllListeners("exit");
  const exited = new Promise((r) => p.once("exit", r));
  p.kill("SIGTERM");
  await Promise.race([exited, sleep(10_000).then(() => p.kill("SIGKILL"))]);
}

/** RSS in MiB of `pid` and every process under it. */
function treeRss(pid) {
  const parent = new Map();
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      parent.set(Number(d), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
    } catch {}
  }
  const tree = new Set([pid]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [p, pp] of parent) if (!tree.has(p) && tree.has(pp)) (tree.add(p), (grew = true));
  }
  let kb = 0;
  const parts = [];
  for (const p of tree) {
    try {
      const status = readFileSync(`/proc/${p}/status`, "utf8");
      const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      const name = /Name:\s+(\S+)/.exec(status)?.[1];
      kb += rss;
      parts.push(`${name} ${(rss / 1024).toFixed(0)}`);
    } catch {}
  }
  return { mib: kb / 1024, parts: parts.join(", ") };
}

async function startup() {
  const dir = dataDir();
  const apps = { bare: [BARE, []], gatehouse: [APP, ["--data-dir", dir]] };
  const times = { bare: [], gatehouse: [] };
  const ready = [];
  // One unmeasured start each warms the disk cache; then they alternate.
  for (const [bin, args] of Object.values(apps)) await stop((await launch(bin, args)).p);
  for (let i = 0; i < RUNS; i++) {
    for (const [name, [bin, args]] of Object.entries(apps)) {
      const { p, ms, readyMs } = await launch(bin, args);
      times[name].push(ms);
      if (readyMs !== undefined) ready.push(readyMs);
      await stop(p);
    }
  }
  const b = median(times.bare), g = median(times.gatehouse);
  console.log(`start to first paint (median of ${RUNS}): bare ${b.toFixed(0)} ms, Gatehouse ${g.toFixed(0)} ms — ${(g / b).toFixed(2)}× (budget 1.15×)`);
  console.log(`  bare: ${times.bare.map((t) => t.toFixed(0)).join(" ")}; Gatehouse: ${times.gatehouse.map((t) => t.toFixed(0)).join(" ")}`);
  console.log(`start to the mounted app's first frame (median of ${RUNS}): Gatehouse ${median(ready).toFixed(0)} ms — ${(median(ready) / b).toFixed(2)}× the bare app's first paint`);
  console.log(`  ${ready.map((t) => t.toFixed(0)).join(" ")}`);
}

async function memory() {
  const dir = dataDir();
  const out = {};
  for (const [name, bin, args] of [["bare", BARE, []], ["gatehouse", APP, ["--data-dir", dir]]]) {
    const samples = [];
    for (let i = 0; i < 3; i++) {
      const { p } = await launch(bin, args);
      await sleep(10_000); // the measurement is "at rest, 10 s after the first paint"
      samples.push(treeRss(p.pid));
      await stop(p);
    }
    samples.sort((a, b) => a.mib - b.mib);
    out[name] = samples[1];
  }
  console.log(`resident memory 10 s after first paint (median of 3, all processes): bare ${out.bare.mib.toFixed(0)} MiB, Gatehouse ${out.gatehouse.mib.toFixed(0)} MiB — ${(out.gatehouse.mib / out.bare.mib).toFixed(2)}× (budget 1.15×)`);
  console.log(`  bare: ${out.bare.parts}; Gatehouse: ${out.gatehouse.parts}`);
}

/** An OpenAI-compatible gateway that streams `count` tokens "tNNNNN " at `rate` a second,
 * noting when it wrote each; or answers at once ("ok") when `count` is 0. */
async function tokenGateway() {
  const state = { count: 0, rate: 100, written: [] };
  const server = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      if (!req.url.endsWith("/chat/completions")) return res.writeHead(404).end();
      res.writeHead(200, { "content-type": "text/event-stream" });
      const chunk = (t) => `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: t } }] })}\n\n`;
      if (state.count === 0) return res.end(chunk("ok") + "data: [DONE]\n\n");
      state.written = [];
      const start = now();
      let i = 0;
      const tick = () => {
        // Catch up to the schedule (timers are coarse): token i is due at start + i/rate.
        while (i < state.count && now() >= start + (i * 1000) / state.rate) {
          res.write(chunk(`t${String(i).padStart(5, "0")} `));
          state.written[i] = now();
          i++;
        }
        if (i < state.count) setTimeout(tick, 1);
        else res.end("data: [DONE]\n\n");
      };
      tick();
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return { state, url: `http://127.0.0.1:${server.address().port}/v1`, close: () => server.close() };
}

async function withDriver(f) {
  // Ports of its own, so an end-to-end run on the same machine does not collide with it.
  const driver = spawn(DRIVER, ["--port", "4446", "--native-port", "4447"], { stdio: "ignore" });
  for (let i = 0; ; i++) {
    try {
      await fetch("http://127.0.0.1:4446/status");
      break;
    } catch (e) {
      if (i > 200) throw e;
      await sleep(50);
    }
  }
  try {
    return await f();
  } finally {
    driver.kill("SIGTERM");
  }
}

async function open(dir) {
  const app = await remote({ hostname: "127.0.0.1", port: 4446, logLevel: "error", capabilities: { "tauri:options": { application: APP, args: ["--data-dir", dir] } } });
  await app.$('[data-testid="composer"]').waitForExist({ timeout: 60_000 });
  return app;
}

async function tokenPath(gw) {
  const dir = dataDir();
  execFileSync(CLI, ["--data-dir", dir, "gateways", "add", "bench", "--kind", "openai", "--url", gw.url], { stdio: "ignore" });
  await withDriver(async () => {
    const app = await open(dir);
    for (const [rate, count] of [[100, 600], [1000, 3000]]) {
      Object.assign(gw.state, { rate, count });
      await (await app.$('[data-testid="new-conversation"]')).click();
      // In the page: each frame, the highest token painted and when; and every frame's length.
      // The text is read in a task posted from the frame's callback: it runs after every
      // callback of that frame (the window's own, which may come after this one) and after the
      // frame's rendering, so it sees what that frame painted.
      await app.execute(() => {
        const w = window;
        w.__bench = { painted: [], frames: [], done: false };
        let last = performance.now();
        const read = () => {
          const m = [...document.querySelectorAll('[data-testid="message"][data-role="assistant"]')].pop();
          const text = m?.querySelector('[data-testid="message-text"]')?.textContent ?? "";
          const found = text.match(/t(\d{5})\s*$/);
          if (found) {
            const n = Number(found[1]);
            const at = performance.timeOrigin + performance.now();
            for (let k = w.__bench.painted.length; k <= n; k++) w.__bench.painted[k] = at;
          }
          if (m?.dataset.state === "complete") {
            w.__bench.done = true;
            w.__bench.text = text;
          }
        };
        const frame = (t) => {
          w.__bench.frames.push(t - last);
          last = t;
          setTimeout(read, 0);
          if (!w.__bench.done) requestAnimationFrame(frame);
        };
        requestAnimationFrame(frame);
      });
      await (await app.$('[data-testid="composer"]')).setValue("go");
      await (await app.$('[data-testid="send"]')).click();
      await app.waitUntil(() => app.execute(() => window.__bench.done), { timeout: 120_000, interval: 200 });
      const b = await app.execute(() => window.__bench);
      const lat = gw.state.written.map((w, i) => b.painted[i] - w).filter((x) => Number.isFinite(x));
      const expected = Array.from({ length: count }, (_, i) => `t${String(i).padStart(5, "0")}`).join(" ");
      const same = b.text.trim() === expected;
      const frames = b.frames.slice(2); // the first frames include the send itself
      console.log(
        `token path at ${rate} tokens/s (${count} tokens): p50 ${pct(lat, 50).toFixed(1)} ms, p95 ${pct(lat, 95).toFixed(1)} ms, max ${Math.max(...lat).toFixed(1)} ms; longest frame ${Math.max(...frames).toFixed(1)} ms; text identical: ${same ? "yes" : "NO"} (budget at 100/s: p95 ≤ 50 ms, no frame over 50 ms)`,
      );
    }
    await app.deleteSession();
  });
}

async function openLong(gw) {
  const dir = dataDir();
  execFileSync(CLI, ["--data-dir", dir, "gateways", "add", "bench", "--kind", "openai", "--url", gw.url], { stdio: "ignore" });
  Object.assign(gw.state, { count: 0 });
  // 5,000 turns in one interactive session: 10,000 messages in one conversation.
  const t0 = now();
  const lines = Array.from({ length: 5000 }, (_, i) => `message ${i} with some words to index and show`).join("\n") + "\n";
  await new Promise((res, rej) => {
    const p = spawn(CLI, ["--data-dir", dir, "chat", "--interactive"], { stdio: ["pipe", "ignore", "ignore"] });
    p.stdin.end(lines);
    p.on("exit", (c) => (c === 0 ? res() : rej(new Error(`chat --interactive exited ${c}`))));
  });
  await run(CLI, ["--data-dir", dir, "chat", "a short one"]);
  const list = JSON.parse((await run(CLI, ["--data-dir", dir, "--json", "chats", "list"])).stdout);
  const long = list.find((c) => c.messages >= 10000);
  if (!long) throw new Error(`no conversation of 10,000 messages: ${JSON.stringify(list.map((c) => c.messages))}`);
  console.log(`  (seeded ${long.messages} messages in ${((now() - t0) / 1000).toFixed(0)} s)`);
  await withDriver(async () => {
    const app = await open(dir);
    const times = [];
    for (let i = 0; i < RUNS; i++) {
      // Show the short one, then time the long one from the click to its newest message painted.
      await app.execute((id) => document.querySelector(`[data-testid="conversation-item"]:not([data-id="${id}"]) button`).click(), long.id);
      await app.waitUntil(() => app.execute(() => document.querySelectorAll('[data-testid="message"]').length === 2), { timeout: 30_000 });
      const ms = await app.executeAsync((id, done) => {
        const t0 = performance.now();
        document.querySelector(`[data-testid="conversation-item"][data-id="${id}"] button`).click();
        const check = () => {
          const msgs = document.querySelectorAll('[data-testid="message"]');
          const last = msgs[msgs.length - 1];
          if (msgs.length > 2 && last?.textContent?.includes("ok")) requestAnimationFrame(() => requestAnimationFrame(() => done(performance.now() - t0)));
          else requestAnimationFrame(check);
        };
        check();
      }, long.id);
      times.push(ms);
    }
    console.log(`opening a conversation of ${long.messages} messages, click to newest message painted (median of ${RUNS}): ${median(times).toFixed(0)} ms (${times.map((t) => t.toFixed(0)).join(" ")}; budget 300 ms)`);
    const newest = Math.max(...(await app.execute(() => [...document.querySelectorAll('[data-testid="message"]')].map((m) => Number(m.dataset.id)))));
    // Scrolling up through it as fast as a flick of the wheel: 400 px a frame for 10 s, older
    // pages loading as the top comes near. Every frame's length, and how far it got.
    const scroll = await app.executeAsync((done) => {
      let el = document.querySelector('[data-testid="message"]');
      while (el && !(el.scrollHeight > el.clientHeight + 10 && /auto|scroll/.test(getComputedStyle(el).overflowY))) el = el.parentElement;
      const frames = [];
      let lowest = Infinity;
      let last = performance.now();
      const t0 = last;
      const step = (t) => {
        frames.push(t - last);
        last = t;
        el.scrollTop -= 400;
        for (const m of document.querySelectorAll('[data-testid="message"]')) lowest = Math.min(lowest, Number(m.dataset.id));
        if (t - t0 > 10_000) done({ frames, lowest });
        else requestAnimationFrame(step);
      };
      requestAnimationFrame(step);
    });
    const f = scroll.frames.slice(1);
    console.log(
      `scrolling up 400 px a frame for 10 s: ${f.length} frames, p50 ${pct(f, 50).toFixed(1)} ms, p95 ${pct(f, 95).toFixed(1)} ms, longest ${Math.max(...f).toFixed(0)} ms; reached message ${scroll.lowest} (newest ${newest}: about ${newest - scroll.lowest} messages up)`,
    );
    await app.deleteSession();
  });
}

// Sections by name (startup, memory, tokens, open — which also scrolls); all when none is named.
const pick = process.argv.slice(2);
const want = (name) => pick.length === 0 || pick.includes(name);
const gw = await tokenGateway();
try {
  if (want("startup")) await startup();
  if (want("memory")) await memory();
  if (want("tokens")) await tokenPath(gw);
  if (want("open")) await openLong(gw);
} finally {
  gw.close();
}

// A MOCK OpenAI-compatible gateway for what a real one cannot be made to do on demand: a reply
// cut mid-stream (the socket closes, no [DONE]), a 401, a reply that streams slowly enough to be
// stopped by hand, and a model that calls the exec tool on cue (the built-in 135M model does
// not call tools reliably). Everything else in the E2E uses the real built-in model.
import http from "node:http";

export async function startFaultGateway() {
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      const path = req.url ?? "";
      if (path.startsWith("/unauthorized/")) {
        res.writeHead(401, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: { message: "Incorrect API key provided", type: "invalid_request_error", code: "invalid_api_key" } }));
        return;
      }
      if (!path.endsWith("/chat/completions")) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      const chunk = (text) => `data: ${JSON.stringify({ id: "x", object: "chat.completion.chunk", choices: [{ index: 0, delta: { content: text } }] })}\n\n`;
      if (path.startsWith("/cut/")) {
        // Some of the reply, then the connection ends with no [DONE].
        const words = "The first part of this reply arrives and then the line goes".split(" ");
        let i = 0;
        const t = setInterval(() => {
          if (i < words.length) res.write(chunk((i ? " " : "") + words[i++]));
          else {
            clearInterval(t);
            res.socket?.destroy();
          }
        }, 20);
        return;
      }
      if (path.startsWith("/tools/") || path.startsWith("/tools-ask/")) {
        // First turn: ask for `echo` (allowed by default) or, on /tools-ask/, `touch` (asked
        // about by default); once the tool's result is in the request, answer.
        const [program, args] = path.startsWith("/tools/") ? ["echo", ["hello from the sandbox"]] : ["touch", ["made-by-the-model"]];
        if (!body.includes('"role":"tool"')) {
          const call = { index: 0, id: "call_1", type: "function", function: { name: "exec", arguments: JSON.stringify({ program, args }) } };
          res.write(`data: ${JSON.stringify({ id: "x", object: "chat.completion.chunk", choices: [{ index: 0, delta: { tool_calls: [call] }, finish_reason: "tool_calls" }] })}\n\n`);
        } else {
          res.write(chunk(program === "echo" ? "It printed a greeting." : "The file was not made."));
        }
        res.end("data: [DONE]\n\n");
        return;
      }
      if (path.startsWith("/slow/")) {
        // A long reply, one word every 50 ms (a minute in all): long enough to stop.
        let i = 0;
        const t = setInterval(() => {
          if (res.destroyed || i >= 1200) {
            clearInterval(t);
            if (!res.destroyed) res.end("data: [DONE]\n\n");
            return;
          }
          res.write(chunk(`word${i++} `));
        }, 50);
        res.on("close", () => clearInterval(t));
        return;
      }
      res.writeHead(404).end();
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address();
  return { url: (kind) => `http://127.0.0.1:${port}/${kind}/v1`, close: () => new Promise((r) => server.close(r)) };
}

import { beforeAll, describe, expect, it, vi } from "vitest";
import DOMPurify from "dompurify";
import { Blocks, highlighterLoaded, highlighting, loadHighlighter } from "./markdown";

/** A message's HTML as the window shows it: finished, or still streaming (`open`). */
function renderMarkdown(text: string, open = false): string {
  return new Blocks().render(text, open).join("");
}

function dom(html: string): HTMLElement {
  const div = document.createElement("div");
  div.innerHTML = html;
  return div;
}

describe("code before the highlighter has loaded (the first code block shown loads it)", () => {
  it("is shown as plain text, then highlighted once it has", async () => {
    expect(highlighting()).toBe(false);
    const blocks = new Blocks();
    expect(blocks.render("No code here.", false)).toHaveLength(1);
    expect(highlighting()).toBe(false);
    const code = "```rust\nfn main() {}\n```";
    const before = dom(blocks.render(code, false).join(""));
    expect(before.querySelector("code")?.textContent).toBe("fn main() {}");
    expect(before.querySelector(".hljs-keyword")).toBeNull();
    await highlighterLoaded;
    expect(dom(blocks.render(code, false).join("")).querySelector(".hljs-keyword")?.textContent).toBe("fn");
  });
});

describe("model output rendered as markdown", () => {
  beforeAll(() => loadHighlighter());
  it("renders the usual markdown, with code highlighted and its language named", () => {
    const el = dom(renderMarkdown("# Title\n\nSome **bold** and `code`.\n\n```rust\nfn main() { let x = 1; }\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |"));
    expect(el.querySelector("h1")?.textContent).toBe("Title");
    expect(el.querySelector("strong")?.textContent).toBe("bold");
    expect(el.querySelector(".code-block .code-lang")?.textContent).toBe("rust");
    expect(el.querySelector(".code-block code .hljs-keyword")?.textContent).toBe("fn");
    expect(el.querySelector("table td")?.textContent).toBe("1");
  });

  const hostile: Array<[string, string]> = [
    ["a script tag", "<script>window.pwned = 1</script>"],
    ["an event handler", '<img src=x onerror="window.pwned=1">'],
    ["an svg with script", '<svg onload="window.pwned=1"><script>window.pwned=1</script></svg>'],
    ["an iframe", '<iframe src="https://evil.example"></iframe>'],
    ["a javascript: link", "[click](javascript:window.pwned=1)"],
    ["a data: link", "[click](data:text/html,<script>alert(1)</script>)"],
    ["a form", '<form action="https://evil.example"><input name=a><button>go</button></form>'],
    ["a style tag", "<style>body{display:none}</style>"],
    ["an inline style", '<p style="position:fixed;inset:0">cover</p>'],
    ["a meta refresh", '<meta http-equiv="refresh" content="0;url=https://evil.example">'],
    ["an object", '<object data="https://evil.example/x.swf"></object>'],
  ];

  for (const [[what, input], open] of hostile.flatMap((h) => [[h, false], [h, true]] as const)) {
    it(`never lets through ${what}${open ? ", while it streams" : ""}`, () => {
      const el = dom(renderMarkdown(input, open));
      expect(el.querySelector("script, iframe, object, embed, form, input, button, style, meta, svg, img")).toBeNull();
      for (const node of el.querySelectorAll("*")) {
        for (const attr of node.attributes) {
          expect(attr.name.startsWith("on"), `${node.tagName} ${attr.name}`).toBe(false);
          expect(attr.name).not.toBe("style");
        }
        const href = node.getAttribute("href");
        if (href !== null) expect(href).toMatch(/^(https?:|mailto:)/);
      }
      expect((window as unknown as { pwned?: number }).pwned).toBeUndefined();
    });
  }

  it("shows an image as a link to click, never loading it", () => {
    const el = dom(renderMarkdown("![a cat](https://images.example/cat.png)"));
    expect(el.querySelector("img")).toBeNull();
    const a = el.querySelector("a");
    expect(a?.getAttribute("href")).toBe("https://images.example/cat.png");
    expect(a?.textContent).toBe("image: a cat");
    expect(a?.dataset.external).toBe("true");
  });

  it("marks web links to open outside the app", () => {
    const a = dom(renderMarkdown("see https://example.com/docs")).querySelector("a");
    expect(a?.getAttribute("href")).toBe("https://example.com/docs");
    expect(a?.dataset.external).toBe("true");
    expect(a?.getAttribute("rel")).toBe("noopener noreferrer");
    expect(a?.hasAttribute("target")).toBe(false);
  });

  it("keeps code as text, however it looks", () => {
    const el = dom(renderMarkdown("```html\n<script>alert(1)</script>\n```"));
    expect(el.querySelector("script")).toBeNull();
    expect(el.querySelector("code")?.textContent).toContain("<script>alert(1)</script>");
  });
});

describe("a reply rendered as it streams", () => {
  const reply = "Here is a plan:\n\n1. read\n2. write\n\n```\nfn main() {}\n```\n\nAnd the last paragraph, still grow";

  it("makes each finished block once: a new token costs only the last block", () => {
    const blocks = new Blocks();
    const sanitize = vi.spyOn(DOMPurify, "sanitize");
    const first = blocks.render(reply, true);
    expect(first).toHaveLength(4);
    expect(sanitize).toHaveBeenCalledTimes(4);
    sanitize.mockClear();
    const next = blocks.render(reply + "ing.", true);
    expect(sanitize).toHaveBeenCalledTimes(1);
    expect(next.slice(0, 3)).toEqual(first.slice(0, 3));
    expect(dom(next[3]).textContent?.trim()).toBe("And the last paragraph, still growing.");
    sanitize.mockRestore();
  });

  it("ends as the same HTML the whole text makes at once", () => {
    const blocks = new Blocks();
    let text = "";
    for (const piece of reply.match(/.{1,3}/gs)!) {
      text += piece;
      blocks.render(text, true);
    }
    expect(blocks.render(text, false).join("")).toBe(new Blocks().render(text, false).join(""));
  });

  it("names a code block's language once the block is finished, not on every token", () => {
    const code = "```\nfn main() {\n    let x: u32 = 1;\n    println!(\"{}\", x);\n}\n```";
    expect(dom(renderMarkdown(code, true)).querySelector(".code-lang")).toBeNull();
    expect(dom(renderMarkdown(code, false)).querySelector(".code-lang")?.textContent).toBe("rust");
  });

  it("makes a block again when a reference link's definition arrives after it", () => {
    const blocks = new Blocks();
    expect(dom(blocks.render("See [the docs][1].\n\nMore.", true)[0]).querySelector("a")).toBeNull();
    const html = blocks.render("See [the docs][1].\n\nMore.\n\n[1]: https://example.com/docs", false);
    expect(dom(html[0]).querySelector("a")?.getAttribute("href")).toBe("https://example.com/docs");
  });
});

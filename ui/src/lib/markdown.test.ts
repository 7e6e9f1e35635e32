import { describe, expect, it } from "vitest";
import { renderMarkdown } from "./markdown";

function dom(html: string): HTMLElement {
  const div = document.createElement("div");
  div.innerHTML = html;
  return div;
}

describe("model output rendered as markdown", () => {
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

  for (const [what, input] of hostile) {
    it(`never lets through ${what}`, () => {
      const el = dom(renderMarkdown(input));
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

// The jobs table's bookkeeping: news applied to the rows, durations, typed command lines.
import { describe, expect, it } from "vitest";
import { applyNews, duration, place, sharedHost, splitCommand, MAX_ROWS } from "./jobs.svelte";
import type { JobRow } from "./bindings/JobRow";
import type { JobState } from "./bindings/JobState";

function row(id: number, state: JobState = "queued"): JobRow {
  return {
    id, state, kind: "exec", title: `echo ${id}`, priority: 0, attempts: 0, max_attempts: 1,
    created_at: "2026-12-04T10:00:00Z", started_at: null, finished_at: null, exit_code: null,
    error: null, waiting_approval: null, progress: null, worker: null,
  };
}

describe("applyNews", () => {
  it("puts a new job at the top and updates a known one in place", () => {
    const rows = [row(2), row(1)];
    const next = applyNews(rows, [{ type: "job", row: row(3) }, { type: "job", row: row(1, "running") }], null);
    expect(next).not.toBe("reload");
    expect((next as JobRow[]).map((r) => [r.id, r.state])).toEqual([[3, "queued"], [2, "queued"], [1, "running"]]);
    expect(rows.map((r) => r.state)).toEqual(["queued", "queued"]); // the old array is left as it was
  });

  it("drops a row that leaves the filter's state and adds one that enters it, in id order", () => {
    const rows = [row(5, "running"), row(2, "running")];
    const next = applyNews(rows, [{ type: "job", row: row(5, "succeeded") }, { type: "job", row: row(3, "running") }], "running") as JobRow[];
    expect(next.map((r) => r.id)).toEqual([3, 2]);
  });

  it("returns the same array when nothing shown changed", () => {
    const rows = [row(2)];
    expect(applyNews(rows, [{ type: "job", row: row(9, "failed") }], "queued")).toBe(rows);
    expect(applyNews(rows, [{ type: "progress", id: 7, percent: 50 }], null)).toBe(rows);
    expect(applyNews(rows, [{ type: "paused", paused: true }], null)).toBe(rows);
  });

  it("applies progress, prunes, and asks for a reload after a resync", () => {
    const rows = [row(2, "running"), row(1)];
    const next = applyNews(rows, [{ type: "progress", id: 2, percent: 40 }, { type: "pruned", ids: [1] }], null) as JobRow[];
    expect(next.map((r) => [r.id, r.progress])).toEqual([[2, 40]]);
    expect(applyNews(rows, [{ type: "job", row: row(3) }, { type: "resync" }], null)).toBe("reload");
  });

  it("keeps at most a page of rows", () => {
    const rows = Array.from({ length: MAX_ROWS }, (_, i) => row(MAX_ROWS - i));
    const next = applyNews(rows, [{ type: "job", row: row(MAX_ROWS + 1) }], null) as JobRow[];
    expect(next.length).toBe(MAX_ROWS);
    expect(next[0].id).toBe(MAX_ROWS + 1);
    // An old job coming back into view below a full page stays out of it.
    const full = next;
    expect(applyNews(full, [{ type: "job", row: row(1) }], null)).toBe(full);
  });

  it("applies a burst of ten thousand news to a full page: every row in its place, in id order", () => {
    const rows = Array.from({ length: MAX_ROWS }, (_, i) => row(2 * (MAX_ROWS - i))); // even ids
    const news = [
      ...rows.map((r) => ({ type: "job" as const, row: row(r.id, "succeeded") })),
      ...Array.from({ length: 100 }, (_, i) => ({ type: "job" as const, row: row(2 * MAX_ROWS + 1 + 2 * i) })),
      { type: "job" as const, row: row(2 * MAX_ROWS - 1) }, // between two known rows
    ];
    const next = applyNews(rows, news, null) as JobRow[];
    expect(next.length).toBe(MAX_ROWS);
    expect(next.every((r, i) => i === 0 || next[i - 1].id > r.id)).toBe(true);
    expect(next[0].id).toBe(2 * MAX_ROWS + 199);
    expect(next.find((r) => r.id === 2 * MAX_ROWS - 1)?.state).toBe("queued");
    expect(next.filter((r) => r.id % 2 === 0).every((r) => r.state === "succeeded")).toBe(true);
  });
});

describe("place", () => {
  it("finds a job by id in rows newest first, or where it would go", () => {
    const rows = [row(9), row(7), row(4)];
    expect(place(rows, 7)).toEqual({ at: 1, found: true });
    expect(place(rows, 10)).toEqual({ at: 0, found: false });
    expect(place(rows, 5)).toEqual({ at: 2, found: false });
    expect(place(rows, 1)).toEqual({ at: 3, found: false });
    expect(place([], 1)).toEqual({ at: 0, found: false });
  });
});

describe("duration", () => {
  const started = { started_at: "2026-12-04T10:00:00Z", state: "running" as JobState };
  it("counts a running job up to now, and a finished one to its end", () => {
    expect(duration({ ...started, finished_at: null }, Date.parse("2026-12-04T10:00:07Z"))).toBe("7 s");
    expect(duration({ ...started, state: "succeeded", finished_at: "2026-12-04T10:02:05Z" })).toBe("2 min 5 s");
    expect(duration({ ...started, state: "failed", finished_at: "2026-12-04T11:03:00Z" })).toBe("1 h 3 min");
    expect(duration({ started_at: null, finished_at: null, state: "queued" })).toBe("");
  });
});

describe("splitCommand", () => {
  it("splits on spaces and keeps quoted words whole, expanding nothing", () => {
    expect(splitCommand("sleep 5")).toEqual(["sleep", "5"]);
    expect(splitCommand(`grep -r "two words" 'a $HOME' it\\ s ""`)).toEqual(["grep", "-r", "two words", "a $HOME", "it s", ""]);
    expect(splitCommand("  ")).toEqual([]);
  });
  it("refuses an unclosed quote", () => {
    expect(() => splitCommand(`echo "hi`)).toThrow(/double quote is not closed/);
  });
});

describe("sharedHost", () => {
  it("keeps the host, port and database, and leaves out the scheme and the user", () => {
    expect(sharedHost("postgres://gatehouse:***@db.example:5432/jobs")).toBe("db.example:5432/jobs");
    expect(sharedHost("postgres://gatehouse@127.0.0.1:5433/gatehouse")).toBe("127.0.0.1:5433/gatehouse");
    expect(sharedHost("postgresql://db/jobs")).toBe("db/jobs");
  });
});

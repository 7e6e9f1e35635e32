// The jobs table's state: the rows (newest first), the pool's status, the filter and the job
// selected. News from every process on the database comes as the `job` event; it is applied
// in batches, once per frame, so a burst of thousands of changes costs one re-render.

import { api, asError } from "./api";
import type { JobRow } from "./bindings/JobRow";
import type { JobNews } from "./bindings/JobNews";
import type { JobState } from "./bindings/JobState";
import type { PoolStatus } from "./bindings/PoolStatus";
import type { ErrorBody } from "./bindings/ErrorBody";

/** The most rows the table holds (the engine's page); older ones are left out. */
export const MAX_ROWS = 10_000;

/**
 * Where job `id` is in `rows` (ids descending, newest first), or where it would go: binary
 * search, so a burst of thousands of news against 10,000 rows stays cheap (findIndex per news
 * would be quadratic).
 */
export function place(rows: JobRow[], id: number): { at: number; found: boolean } {
  let lo = 0;
  let hi = rows.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (rows[mid].id > id) lo = mid + 1;
    else hi = mid;
  }
  return { at: lo, found: lo < rows.length && rows[lo].id === id };
}

/**
 * Where a shared queue lives, for the jobs view's header: its host, port and database, without
 * the scheme or the user (the engine has already hidden any password).
 */
export function sharedHost(url: string): string {
  const rest = url.includes("://") ? url.slice(url.indexOf("://") + 3) : url;
  return rest.slice(rest.lastIndexOf("@") + 1);
}

/**
 * `rows` (newest first) after `news`, for a table showing `filter` (null: every state).
 * Returns the same array when nothing shown changed, and "reload" when the table must be read again.
 */
export function applyNews(rows: JobRow[], news: JobNews[], filter: JobState | null): JobRow[] | "reload" {
  let out = rows;
  const copy = () => (out === rows ? (out = rows.slice()) : out);
  for (const n of news) {
    switch (n.type) {
      case "resync":
        return "reload";
      case "paused":
        break; // the rows stay; the status is read again after the batch
      case "pruned": {
        const gone = new Set(n.ids);
        if (out.some((r) => gone.has(r.id))) out = out.filter((r) => !gone.has(r.id));
        break;
      }
      case "progress": {
        const { at: i, found } = place(out, n.id);
        if (found && out[i].progress !== n.percent) copy()[i] = { ...out[i], progress: n.percent };
        break;
      }
      case "job": {
        const row = n.row;
        const { at, found } = place(out, row.id);
        const shown = filter === null || row.state === filter;
        if (found && shown) copy()[at] = row;
        else if (found) copy().splice(at, 1);
        else if (shown && at < MAX_ROWS) {
          // Ids grow with submission: a new job goes at the top; an old one (back in view
          // after a filter change of state) goes where its id says.
          copy().splice(at, 0, row);
          if (out.length > MAX_ROWS) out.length = MAX_ROWS;
        }
        break;
      }
    }
  }
  return out;
}

/** How long a job ran or has been running, as a person reads it: "4 s", "2 min 5 s", "1 h 3 min". */
export function duration(row: Pick<JobRow, "started_at" | "finished_at" | "state">, now: number = Date.now()): string {
  if (!row.started_at) return "";
  const start = Date.parse(row.started_at);
  const end = row.finished_at ? Date.parse(row.finished_at) : row.state === "running" ? now : start;
  const s = Math.max(0, Math.round((end - start) / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/** A command line typed by a person, split into words as a shell would (quotes, backslashes), nothing expanded. */
export function splitCommand(line: string): string[] {
  const words: string[] = [];
  let word: string | null = null;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === quote) quote = null;
      else if (c === "\\" && quote === '"' && i + 1 < line.length) word += line[++i];
      else word += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      word ??= "";
    } else if (c === "\\" && i + 1 < line.length) {
      word = (word ?? "") + line[++i];
    } else if (/\s/.test(c)) {
      if (word !== null) words.push(word);
      word = null;
    } else {
      word = (word ?? "") + c;
    }
  }
  if (quote) throw new Error(`a ${quote === '"' ? "double" : "single"} quote is not closed`);
  if (word !== null) words.push(word);
  return words;
}

export class Jobs {
  rows = $state.raw<JobRow[]>([]);
  status = $state<PoolStatus | null>(null);
  filter = $state<JobState | null>(null);
  selected = $state<number | null>(null);
  error = $state<ErrorBody | null>(null);
  private pending: JobNews[] = [];
  private frame = 0;
  private statusBusy = false;
  private statusAgain = false;
  private stop: Array<() => void> = [];

  async start(): Promise<void> {
    this.stop.push(await api.onJob((n) => this.queue(n)));
    await this.reload();
  }

  dispose(): void {
    this.stop.forEach((f) => f());
    this.stop = [];
    cancelAnimationFrame(this.frame);
  }

  get row(): JobRow | null {
    return this.rows.find((r) => r.id === this.selected) ?? null;
  }

  async reload(): Promise<void> {
    try {
      const [rows] = await Promise.all([api.jobs(this.filter, MAX_ROWS), this.refreshStatus()]);
      this.rows = rows;
      this.error = null;
    } catch (e) {
      this.error = asError(e);
    }
  }

  async setFilter(filter: JobState | null): Promise<void> {
    this.filter = filter;
    await this.reload();
  }

  private queue(n: JobNews): void {
    this.pending.push(n);
    if (this.pending.length === 1) this.frame = requestAnimationFrame(() => this.flush());
  }

  private flush(): void {
    const news = this.pending;
    this.pending = [];
    const next = applyNews(this.rows, news, this.filter);
    if (next === "reload") return void this.reload();
    if (next !== this.rows) this.rows = next;
    if (news.some((n) => n.type !== "progress")) void this.refreshStatus();
  }

  /** The pool's counts, read again; one read at a time, and one more if news came meanwhile. */
  private async refreshStatus(): Promise<void> {
    if (this.statusBusy) {
      this.statusAgain = true;
      return;
    }
    this.statusBusy = true;
    try {
      do {
        this.statusAgain = false;
        this.status = await api.poolStatus();
      } while (this.statusAgain);
    } catch (e) {
      this.error = asError(e);
    } finally {
      this.statusBusy = false;
    }
  }

  async act(f: () => Promise<unknown>): Promise<boolean> {
    try {
      await f();
      this.error = null;
      return true;
    } catch (e) {
      this.error = asError(e);
      return false;
    }
  }

  cancel(id: number) {
    return this.act(() => api.cancelJob(id));
  }

  retry(id: number) {
    return this.act(() => api.retryJob(id));
  }

  togglePause() {
    const paused = !(this.status?.paused ?? false);
    return this.act(async () => (this.status = await api.pausePool(paused)));
  }
}

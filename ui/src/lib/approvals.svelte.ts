// Commands waiting for a person: asked by this app's chat or jobs, or by any other process on
// the database. The list is read at start and kept by the `approval` event; the dialog shows
// the oldest, and closes when it is answered — here, in another window, or from a terminal.

import { api, asError } from "./api";
import type { ApprovalEvent } from "./bindings/ApprovalEvent";
import type { ApprovalRequest } from "./bindings/ApprovalRequest";
import type { Answer } from "./bindings/Answer";
import type { ErrorBody } from "./bindings/ErrorBody";

/** The pending list after `event`, oldest first; "reload" when events were missed. */
export function applyApproval(pending: ApprovalRequest[], event: ApprovalEvent): ApprovalRequest[] | "reload" {
  switch (event.type) {
    case "resync":
      return "reload";
    case "requested":
      if (pending.some((a) => a.id === event.approval.id)) return pending;
      return [...pending, event.approval].sort((a, b) => a.id - b.id);
    case "resolved":
    case "expired":
      return pending.filter((a) => a.id !== event.approval.id);
  }
}

/** Who asks, in words. */
export function asker(a: Pick<ApprovalRequest, "requester" | "conversation_id" | "job_id">): string {
  if (a.requester === "model") return a.conversation_id !== null ? `the model, in conversation ${a.conversation_id}` : "the model";
  if (a.requester === "job") return a.job_id !== null ? `job #${a.job_id}` : "a job";
  return "you (a command typed in Gatehouse or a terminal)";
}

export class Approvals {
  pending = $state.raw<ApprovalRequest[]>([]);
  error = $state<ErrorBody | null>(null);
  private stop: (() => void) | undefined;

  async start(): Promise<void> {
    this.stop = await api.onApproval((e) => {
      const next = applyApproval(this.pending, e);
      if (next === "reload") void this.reload();
      else this.pending = next;
    });
    await this.reload();
  }

  dispose(): void {
    this.stop?.();
  }

  async reload(): Promise<void> {
    try {
      this.pending = await api.approvals();
    } catch (e) {
      this.error = asError(e);
    }
  }

  /** The request waiting for the model's tool call in `conversation`, if one is. */
  forConversation(conversation: number | null): ApprovalRequest | null {
    return this.pending.find((a) => a.requester === "model" && a.conversation_id === conversation) ?? null;
  }

  async answer(id: number, answer: Answer): Promise<void> {
    try {
      await api.answerApproval(id, answer);
      this.error = null;
      this.pending = this.pending.filter((a) => a.id !== id);
    } catch (e) {
      const err = asError(e);
      // Answered elsewhere or expired meanwhile: the question is gone, nothing to say.
      if (err.code === "approval.closed" || err.code === "approval.not_found") this.pending = this.pending.filter((a) => a.id !== id);
      else this.error = err;
    }
  }
}

/** The one list every part of a window shares. */
export const approvals = new Approvals();

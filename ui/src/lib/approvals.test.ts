// The pending approvals list, kept by the feed.
import { describe, expect, it } from "vitest";
import { applyApproval, asker } from "./approvals.svelte";
import type { ApprovalRequest } from "./bindings/ApprovalRequest";

function request(id: number): ApprovalRequest {
  return {
    id, asked_at: "", expires_at: "", requester: "model", conversation_id: 4, job_id: null, program: "touch",
    program_file: "/usr/bin/touch", args: ["x"], cwd: "/w", env: [], prompt: "touch x", reason: "no rule covers it",
    rule_id: null, state: "pending", grant_secs: null, answered_at: null,
  };
}

describe("applyApproval", () => {
  it("adds a request once, oldest first, and drops it when answered or expired", () => {
    let list = applyApproval([], { type: "requested", approval: request(2) }) as ApprovalRequest[];
    list = applyApproval(list, { type: "requested", approval: request(1) }) as ApprovalRequest[];
    expect(applyApproval(list, { type: "requested", approval: request(1) })).toBe(list);
    expect(list.map((a) => a.id)).toEqual([1, 2]);
    list = applyApproval(list, { type: "resolved", approval: { ...request(1), state: "denied" } }) as ApprovalRequest[];
    list = applyApproval(list, { type: "expired", approval: { ...request(2), state: "expired" } }) as ApprovalRequest[];
    expect(list).toEqual([]);
    expect(applyApproval(list, { type: "resync" })).toBe("reload");
  });
  it("names who asks", () => {
    expect(asker(request(1))).toBe("the model, in conversation 4");
    expect(asker({ requester: "job", conversation_id: null, job_id: 12 })).toBe("job #12");
  });
});

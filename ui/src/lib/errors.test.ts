import { describe, expect, it } from "vitest";
import { remedy } from "./errors";

describe("what to do about an error, by its code", () => {
  it("shows the exact command that approves a pairing", () => {
    const r = remedy({ code: "gateway.pairing_required", message: "m", data: { gateway: "claw", request_id: "req-42" } });
    expect(r?.command).toBe("openclaw devices approve req-42");
  });

  it("sends a token or address problem to the settings, and a missing model to the fetch", () => {
    expect(remedy({ code: "gateway.unauthorized", message: "m" })?.settings).toBe(true);
    expect(remedy({ code: "gateway.unreachable", message: "m" })?.settings).toBe(true);
    expect(remedy({ code: "model.missing", message: "m" })?.fetchModel).toBe(true);
  });

  it("adds nothing where the sentence says it all", () => {
    expect(remedy({ code: "gateway.rate_limited", message: "m" })).toBeNull();
  });
});

import { describe, expect, it } from "vitest";
import { remedy, sentence } from "./errors";

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

  it("says which token a gateway refused, from its profile", () => {
    const profile = { name: "claw", kind: "openclaw", url: "ws://x", model: null, token_env: "CLAW_TOKEN", token_file: null, token_keyring: false, is_default: false } as const;
    const r = remedy({ code: "gateway.unauthorized", message: "m", data: { gateway: "claw" } }, [profile]);
    expect(r?.detail).toBe("The token of claw comes from the environment variable CLAW_TOKEN.");
    // A reply's stored error has no data: the conversation's gateway is named instead.
    expect(remedy({ code: "gateway.unauthorized", message: "m" }, [{ ...profile, token_env: null, token_keyring: true }], "claw")?.detail)
      .toBe("The token of claw is kept in the system keyring.");
  });

  it("adds nothing where the sentence says it all", () => {
    expect(remedy({ code: "gateway.rate_limited", message: "m" })).toBeNull();
  });
});

describe("an engine message shown on its own", () => {
  it("starts with a capital and ends with a full stop", () => {
    expect(sentence("the local model `x` is not at /m/x.gguf; fetch the built-in one")).toBe("The local model `x` is not at /m/x.gguf; fetch the built-in one.");
    expect(sentence("cannot reach claw at ws://x (refused); is it running?")).toBe("Cannot reach claw at ws://x (refused); is it running?");
  });
});

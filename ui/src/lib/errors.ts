// What a person can do about an error, by its stable code (never by its text). The engine's
// message is already a sentence that says what went wrong and what to try; this adds the
// way there in the app: a settings page, or the exact command to run elsewhere.

import type { ErrorBody } from "./bindings/ErrorBody";

export interface Remedy {
  /** Offer to open the settings (gateways, tokens, models). */
  settings?: boolean;
  /** A command to run somewhere else, shown to copy. */
  command?: string;
  /** Offer to fetch the built-in model. */
  fetchModel?: boolean;
}

export function remedy(e: ErrorBody): Remedy | null {
  const data = (e.data ?? {}) as Record<string, unknown>;
  switch (e.code) {
    case "gateway.pairing_required":
      return typeof data.request_id === "string" ? { command: `openclaw devices approve ${data.request_id}` } : null;
    case "gateway.unauthorized":
    case "gateway.forbidden":
    case "gateway.not_found":
    case "gateway.unreachable":
    case "gateway.unknown":
    case "gateway.local_unavailable":
    case "keyring.unavailable":
      return { settings: true };
    case "model.missing":
      return { fetchModel: true, settings: true };
    case "model.invalid":
      return { settings: true };
    default:
      return null;
  }
}

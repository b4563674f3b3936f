// GrowthBook's edge app as its docs set it up (handleRequest from @growthbook/edge-cloudflare), with
// the payload passed as a config override instead of read from KV or GrowthBook's API: no network
// call but the origin's page. (The package's init() replaces a GROWTHBOOK_PAYLOAD variable with the
// KV payload, undefined without KV, so the override is the way to feed one locally.)
import { handleRequest } from "@growthbook/edge-cloudflare";
import payload from "./payload.json";

export default {
  async fetch(request, env) {
    return handleRequest(request, env, { payload });
  },
};

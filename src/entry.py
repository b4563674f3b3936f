"""nudge's Worker entry point: hands every request (and every batch of due follow-ups) to nudge,
and exports the redemption ledger's Durable Object class (wrangler.toml: NUDGE_LEDGER)."""

import time

from workers import DurableObject, WorkerEntrypoint

from nudge.runtime.worker import handle, handle_queue, open_ledger


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return await handle(request, self.env, self.ctx)

    async def queue(self, batch, env=None, ctx=None):
        # workerd calls queue(batch, env, ctx) with env None: the bindings are on self.env.
        await handle_queue(batch, self.env, self.ctx)


class NudgeLedger(DurableObject):
    """One rule's redemption ledger and daily budget (nudge/ledger.py) in this object's SQLite.
    Each call runs to its end without awaiting, so no other call interleaves with it."""

    def __init__(self, ctx, env):
        super().__init__(ctx, env)
        self.ledger = open_ledger(ctx)

    async def redeem(self, key, limit, keep_until):
        return self.ledger.redeem(str(key), int(limit), int(keep_until), int(time.time()))

    async def used(self):
        return self.ledger.used(int(time.time()))

"""nudge's Worker entry point: hands every request (and every batch of due follow-ups) to nudge."""

from workers import WorkerEntrypoint

from nudge.edge import handle, handle_queue


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return await handle(request, self.env, self.ctx)

    async def queue(self, batch, env=None, ctx=None):
        # workerd calls queue(batch, env, ctx) with env None: the bindings are on self.env.
        await handle_queue(batch, self.env, self.ctx)

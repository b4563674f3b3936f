"""nudge's Worker entry point: hands every request to the nudge package."""

from workers import WorkerEntrypoint

from nudge.edge import handle


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return await handle(request, self.env, self.ctx)

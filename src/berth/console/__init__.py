"""The web console: a single-page app served by ``berth serve`` at ``/`` and under ``/console/``.

It is static files only (ES modules, no build of our own code) that call berth's public REST
API with the signed-in user's token, so it can show and do nothing the token could not. The
third-party modules under ``assets/vendor/`` are copied from npm packages by
``console/vendor.mjs`` (see ``console/package.json``); a test checks the copies are current.
"""

from berth.console.routes import mount_console

__all__ = ["mount_console"]

"""Control of running topologies: reload in place, status, and revisions across runners.

* :mod:`~runnerconf.control.controller` -- applies a new topology to the runners of one
  ``up`` process and reports their status;
* :mod:`~runnerconf.control.watch` -- ``up --watch``: reloads when the files change;
* :mod:`~runnerconf.control.local` -- the ``up`` process's control socket (``ps`` on one machine);
* :mod:`~runnerconf.control.remote` -- ``apply`` and ``ps`` over a network bus;
* :mod:`~runnerconf.control.drift` -- what runs against what the file says.

This is the application layer: it stands on the runtime (``runnerconf.workers``) and the
configuration layer (``runnerconf.config``); neither imports it.
"""

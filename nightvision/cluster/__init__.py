"""Beyond one machine: archives and many cameras on a Ray cluster (``pip install "nightvision[ray]"``).

* :mod:`~nightvision.cluster.connect` — join a cluster (``--address``), start a local one, or run in-process.
* :mod:`~nightvision.cluster.batch` — ``nightvision batch``: files, folders and long videos split at keyframes,
  spread over the cluster's workers, resumable.
* :mod:`~nightvision.cluster.serve` — ``nightvision serve``: one pipeline actor per camera, restarted when it
  fails, and one HTTP port for the views, ``/health`` and ``/metrics``.

Ray is imported only inside these modules, and only when they are used: the runtime stays Ray-free.
"""

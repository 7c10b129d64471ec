"""The worker side: the plugin, the activities, the registries, the processor API, the transport.

Plain module names, each with its own ``__all__``; the public names are re-exported from
``batch_orchestra``.
"""

"""The only code that touches the operating system: raw sockets, netlink, packet sockets,
subprocesses. Each adapter implements a Protocol from :mod:`pykad.adapters.ports`."""

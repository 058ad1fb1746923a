"""The composition root of a berth server process: builds every part and wires them."""

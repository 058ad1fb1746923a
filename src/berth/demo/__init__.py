"""Bundled example artifacts; ``berth serve --demo`` registers them."""

"""Routes of the models resource."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()

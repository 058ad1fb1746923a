"""Routes of the endpoints resource."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()

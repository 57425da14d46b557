"""Whole-system rates: agents beside SB3, SB3 with pyrl's drop-ins, Ray actors, mapped replay."""

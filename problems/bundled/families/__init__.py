"""All bundled problem families, in a fixed order (the order of generated splits).

The families are grouped into modules by kind (stdin programs, call problems) and by the
data they work on (integers, text, lists), so that each module stays short.

Two tiers: ALL_FAMILIES is the default tier (`bundled:sft` ...), short solutions with one or
two conditionals that the tiny model learns well; HARD_FAMILIES is the hard tier
(`bundled:hard-sft` ...), solutions with at least five conditional statements (three or
more CCCS stages) whose branches only some test inputs reach (code for FGO to mask).
"""

from __future__ import annotations

from ..family import Family
from .call_lists import CALL_LIST_FAMILIES
from .call_numbers import CALL_NUMBER_FAMILIES
from .hard_call import HARD_CALL_FAMILIES
from .hard_stdin import HARD_STDIN_FAMILIES
from .stdin_numbers import STDIN_NUMBER_FAMILIES
from .stdin_text import STDIN_TEXT_FAMILIES

ALL_FAMILIES: tuple[Family, ...] = (
    STDIN_NUMBER_FAMILIES + STDIN_TEXT_FAMILIES + CALL_NUMBER_FAMILIES + CALL_LIST_FAMILIES
)

HARD_FAMILIES: tuple[Family, ...] = HARD_STDIN_FAMILIES + HARD_CALL_FAMILIES

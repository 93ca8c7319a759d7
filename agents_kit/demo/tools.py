"""Two tiny third-party "agents" behind ``run(task) -> str``: a safe calculator and a capital-city lookup."""

from __future__ import annotations

import ast
import operator
import re

_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
        ast.Pow: operator.pow, ast.USub: operator.neg, ast.Mod: operator.mod}
CAPITALS = {"france": "Paris", "germany": "Berlin", "italy": "Rome", "japan": "Tokyo", "kenya": "Nairobi",
            "brazil": "Brasília", "canada": "Ottawa", "india": "New Delhi", "spain": "Madrid", "egypt": "Cairo"}


def _eval(node: ast.AST) -> float:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_eval(node.left), _eval(node.right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_eval(node.operand))
    raise ValueError("only numbers and + - * / ** % are allowed")


def calculator(task: str) -> str:
    """Evaluate every arithmetic expression found in ``task`` (no names, no calls: safe)."""
    answers = []
    for expression in re.findall(r"[\d\.\s\+\-\*/%\(\)]*\d[\d\.\s\+\-\*/%\(\)]*", task):
        expression = expression.strip()
        if any(op in expression for op in "+-*/%") and expression:
            try:
                answers.append(f"{expression} = {_eval(ast.parse(expression, mode='eval').body):g}")
            except (ValueError, SyntaxError, ZeroDivisionError) as err:
                answers.append(f"{expression}: cannot compute ({err})")
    return "\n".join(answers) or "No arithmetic expression found."


def capitals(task: str) -> str:
    """Answer 'capital of X' questions from a small table."""
    found = [f"The capital of {c.title()} is {city}." for c, city in CAPITALS.items() if c in task.lower()]
    return " ".join(found) or "I only know the capitals of: " + ", ".join(c.title() for c in CAPITALS)

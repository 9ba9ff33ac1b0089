"""Type inference (docs/reference.md, Types): the printed type of every definition, and type errors with their positions."""
from __future__ import annotations

import pytest

from conftest import load_source
from lang.model.errors import DlError
from lang.model.types import show_scheme


def types_of(text: str) -> dict[str, str]:
    """name -> printed type scheme, for every def of `text` (as `dl check` prints them)."""
    program = load_source(text)
    return {d.name: show_scheme(d.scheme) for d in program.module.defs}


TYPES = [
    # literals, and numbers defaulting to Real only in main
    ("def a = 1.5\ndef b = true\ndef c = ()\ndef d = [1.5]\ndef e = (1.5, true)",
     {"a": "Float 'a => 'a", "b": "Bool", "c": "Unit", "d": "Float 'a => ['a]", "e": "Float 'a => 'a * Bool"}),
    ("def n = 1", {"n": "Num 'a => 'a"}),
    ("def main = 2 + 3", {"main": "Real"}),
    ("def main = range (2 + 3)", {"main": "[Int]"}),
    ("def main = (2 + 3, range (2 + 3))", {"main": "Real * [Int]"}),
    ("def main = length [1, 2] + 1", {"main": "Int"}),
    ("def main = float (length [1]) + 1", {"main": "Real"}),
    ("def main = (1, [2], fun x -> x + 1)", {"main": "Real * [Real] * (Real -> Real)"}),
    ("def main = 1 == 2", {"main": "Bool"}),
    # Num, Float, Eq, Ord, Diff constraints, printed Haskell-style (a real literal is Real or Array)
    ("def sq x = x * x", {"sq": "Num 'a => 'a -> 'a"}),
    ("def add x y = x + y", {"add": "Num 'a => 'a -> 'a -> 'a"}),
    ("def lt a b = a < b", {"lt": "Ord 'a => 'a -> 'a -> Bool"}),
    ("def eq a b = a == b", {"eq": "Eq 'a => 'a -> 'a -> Bool"}),
    ("def g f x = grad f x", {"g": "Diff 'a => ('a -> Real) -> 'a -> 'a"}),
    ("def v f x = vjp f x", {"v": "(Diff 'a, Diff 'b) => ('a -> 'b) -> 'a -> 'b * ('b -> 'a)"}),
    ("def half x = x / 2", {"half": "Float 'a => 'a -> 'a"}),
    ("def f x = sin x * x + 2.0", {"f": "Float 'a => 'a -> 'a"}),
    ("def g (x : Real) = sin x * x + 2.0", {"g": "Real -> Real"}),
    ("def h (x : Array) = sin x * x + 2.0", {"h": "Array -> Array"}),
    ("def two = div 7 2", {"two": "Int"}),
    ("def neg x = -x", {"neg": "Num 'a => 'a -> 'a"}),
    ("def pw x = x ^ 2", {"pw": "Num 'a => 'a -> 'a"}),
    ("def sumsq xs = fold (fun acc x -> acc + x * x) 0 xs", {"sumsq": "Num 'a => ['a] -> 'a"}),
    ("def both x y = (x + 1, y == y)", {"both": "(Num 'a, Eq 'b) => 'a -> 'b -> 'a * Bool"}),
    # parametric polymorphism
    ("def id x = x", {"id": "'a -> 'a"}),
    ("def k x y = x", {"k": "'a -> 'b -> 'a"}),
    ("def swap (a, b) = (b, a)", {"swap": "'a * 'b -> 'b * 'a"}),
    ("def app f x = f x", {"app": "('a -> 'b) -> 'a -> 'b"}),
    ("def twice f x = f (f x)", {"twice": "('a -> 'a) -> 'a -> 'a"}),
    ("def compose f g x = f (g x)", {"compose": "('a -> 'b) -> ('c -> 'a) -> 'c -> 'b"}),
    ("def cons x xs = x :: xs", {"cons": "'a -> ['a] -> ['a]"}),
    ("def pairs xs = map (fun x -> (x, x)) xs", {"pairs": "['a] -> ['a * 'a]"}),
    ("def u () = 1.0", {"u": "Float 'a => Unit -> 'a"}),
    ("def w _ = true", {"w": "'a -> Bool"}),
    ("def m = map", {"m": "('a -> 'b) -> ['a] -> ['b]"}),
    ("def p = (+)", {"p": "Num 'a => 'a -> 'a -> 'a"}),
    ("def c = (::)", {"c": "'a -> ['a] -> ['a]"}),
    ("def a = (&&)", {"a": "Bool -> Bool -> Bool"}),
    ("def pipe = (|>)", {"pipe": "'a -> ('a -> 'b) -> 'b"}),
    ("def fst3 (a, _, _) = a", {"fst3": "'a * 'b * 'c -> 'a"}),
    ("def f (x, (y, z)) = (z, y, x)", {"f": "'a * ('b * 'c) -> 'c * 'b * 'a"}),
    ("def ho (f : Real -> Real) = f", {"ho": "(Real -> Real) -> Real -> Real"}),
    ("def nest = [[1.0], []]", {"nest": "Float 'a => [['a]]"}),
    ("def e = []", {"e": "['a]"}),
    # let-polymorphism: a local definition used at two types
    ("def p = let id y = y in (id 1.5, id true)", {"p": "Float 'a => 'a * Bool"}),
    ("def p = let sq y = y * y in (sq 2.5, sq (length [1]))", {"p": "Float 'a => 'a * Int"}),
    ("def p = let rec len xs = if isEmpty xs then 0 else 1 + len (tail xs) in (len [1.0], len [true])",
     {"p": "(Num 'a, Num 'b) => 'a * 'b"}),
    ("def idl x = let id y = y in (id x, id 1)", {"idl": "Num 'b => 'a -> 'a * 'b"}),
    # lambda-bound variables are monomorphic
    ("def mono f = (f 1.0, f 2.0)", {"mono": "Float 'a => ('a -> 'b) -> 'b * 'b"}),
    # recursion and mutual recursion (order of definitions does not matter)
    ("def fact n = if n == 0 then 1 else n * fact (n - 1)", {"fact": "(Eq 'a, Num 'a) => 'a -> 'a"}),
    ("def even n = if n == 0 then true else odd (n - 1)\ndef odd n = if n == 0 then false else even (n - 1)",
     {"even": "(Eq 'a, Num 'a) => 'a -> Bool", "odd": "(Eq 'a, Num 'a) => 'a -> Bool"}),
    ("def main = later 2.0\ndef later x = x * x", {"main": "Real", "later": "Num 'a => 'a -> 'a"}),
    ("def loop n acc = if n == 0 then acc else loop (n - 1) (acc + 1.0)",
     {"loop": "(Eq 'a, Num 'a, Float 'b) => 'a -> 'b -> 'b"}),
    # annotations are checked and may specialise or constrain
    ("def ann (x : Real) : Real = x", {"ann": "Real -> Real"}),
    ("def f : Real -> Real = fun x -> x", {"f": "Real -> Real"}),
    ("def i (x : Int) = x + 1", {"i": "Int -> Int"}),
    ("def f : Num 'a => 'a -> 'a = fun x -> x", {"f": "Num 'a => 'a -> 'a"}),
    ("def f (x : 'a) (y : 'a) = (x, y)", {"f": "'a -> 'a -> 'a * 'a"}),
    ("def f x = let (y : Int) = x in y", {"f": "Int -> Int"}),
    ("def f = (1 : Int)", {"f": "Int"}),
    ("def f = ([] : [Bool])", {"f": "[Bool]"}),
    # a definition may shadow a prelude name
    ("def sum x = x && true", {"sum": "Bool -> Bool"}),
    # main is a function: its open numbers default to Real
    ("def main x = x * 2", {"main": "Real -> Real"}),
    ("def sq x = x * x\ndef main = sq", {"sq": "Num 'a => 'a -> 'a", "main": "Real -> Real"}),
    ("def main (x : Int) = x * 2", {"main": "Int -> Int"}),
]


@pytest.mark.parametrize("source,expected", TYPES, ids=[t[0].split("\n")[0] for t in TYPES])
def test_inferred_types(source, expected):
    assert types_of(source) == expected


def test_polymorphic_definition_used_at_int_and_real():
    assert types_of("def sq x = x * x\ndef main = (sq 3, sq 2.5, sq (length [1]))") == {
        "sq": "Num 'a => 'a -> 'a", "main": "Real * Real * Int"}


# ---- type errors: kind, position, and the words that matter ---------------------------------------------

TYPE_ERRORS = [
    # source, (line, col), phrases the message must contain
    ("def main = 1 + true", (1, 16), ["`true` has type Bool", "second argument of `+` must be a number"]),
    ("def main = true + 1", (1, 12), ["`true` has type Bool"]),
    ("def bad (x : Int) = x / 2", (1, 21), ["`x` has type Int", "first argument of `/` must be a real number"]),
    ("def bad = div 1.0 2", (1, 15), ["`div`", "must have type Int", "`1.0` is a real number"]),
    ("def main = if 1 then 2 else 3", (1, 15), ["condition of `if` must be Bool", "`1` is a number"]),
    ("def main = if true then 2 else false", (1, 32), ["`false` has type Bool", "`else` branch (like the `then` "
                                                       "branch) must be a number"]),
    ("def main = if true then false else 3", (1, 36), ["branches of `if`", "`then` branch has type Bool",
                                                        "`else` branch is a number"]),
    ("def main = if true then () else 1.0", (1, 33), ["`then` branch has type Unit",
                                                       "`else` branch is a real number"]),
    ("def main = [1, true]", (1, 16), ["`true` has type Bool"]),
    ("def main = [true, 1]", (1, 19), ["element 2 `1` is a number", "the ones before it Bool"]),
    ("def main = [1.0, (1.0, 2.0)]", (1, 18), ["element 2 of the list (like the ones before it) must be a real "
                                               "number"]),
    ("def main = 3 4", (1, 12), ["`3` has type Num 'a => 'a", "not a function"]),
    ("def f (x : Real) = x 1.0", (1, 20), ["`x` has type Real", "not a function"]),
    ("def main = true == 1", (1, 20), ["`1` is a number"]),
    ("def main = () == ()", (1, 12), ["`()` has type Unit", "must be comparable with =="]),
    ("def main = (fun x -> x) == (fun x -> x)", (1, 13), ["must be comparable with =="]),
    ("def main = (1, 2) < (1, 3)", (1, 12), ["first argument of `<` must be an Int or a Real"]),
    ("def main = fst (1, 2, 3)", (1, 16), ["argument of `fst` must have type 'a * 'b",
                                          "has type 'c * 'd * 'e"]),
    ("def main = let (a, b) = (1, 2, 3) in a", (1, 25), ["a pattern of 2 components", "tuple of 2"]),
    ("def f x = if x then 1 else 2\ndef g = f 1", (2, 11), ["`f` expects an argument of type Bool",
                                                           "`1` is a number"]),
    ("def f (x : [Bool]) = x\ndef g = f [1]", (2, 11), ["`f` expects an argument of type [Bool]",
                                                       "`[1]` has type Num 'a => ['a]"]),
    ("def main = not 1", (1, 16), ["argument of `not` must have type Bool", "`1` is a number"]),
    ("def main = map (fun x -> x + 1) [true]", (1, 33), ["`[true]`", "[Bool]"]),
    ("def main = head 1.0", (1, 17), ["argument of `head`", "['a]", "Real"]),
    ("def main = range 2.5", (1, 18), ["argument of `range` must have type Int", "`2.5` is a real number"]),
    # annotations checked, and their failures
    ("def f (x : Int) : Real = x", (1, 26), ["`x` has type Int", "not the annotated Real"]),
    ("def f : Int = 2.5", (1, 15), ["`2.5` is a real number", "not the annotated Int"]),
    ("def f x : Bool = x + 1", (1, 18), ["`x + 1` is a number", "not the annotated Bool"]),
    ("def f = (1 : Bool)", (1, 10), ["`1` is a number", "not the annotated Bool"]),
    ("def f = (true : Num 'a => 'a)", (1, 10), ["`true` has type Bool", "not a number type"]),
    ("def f : Int -> Int = fun (x : Real) -> x", (1, 22), ["has type Real -> Real", "annotated Int -> Int"]),
    ("def f = let (x : Int) = 2.5 in x", (1, 25), ["`2.5` is a real number", "annotated Int"]),
    ("def f = fun (x : Bool) -> x + 1", (1, 27), ["`x` has type Bool", "must be a number"]),
    ("def f = (1.0 : 'a -> 'a)", (1, 10), ["`1.0` is a real number", "not the annotated 'a -> 'a"]),
    ("def f (x : Array) = x < x", (1, 21), ["`x` has type Array", "first argument of `<` must be an Int or a Real"]),
    ("def f (x : Real) (a : Array) = x * a", (1, 36), ["`a` has type Array", "`*` must have type Real"]),
    # occurs check
    ("def f x = x :: x", (1, 16), ["infinite type"]),
    ("def f g = g g", (1, 13), ["`g` cannot be applied to `g`", "infinite type"]),
    # recursion is monomorphic inside its group
    ("def f x = if true then x else f true && f 1", (1, 43), ["`1` is a number"]),
    # differentiation needs differentiable data and a Real result
    ("def main = grad (fun f -> f 1.0) (fun x -> x)", (1, 18),
     ["`grad` differentiates functions of type", "not differentiable data"]),
    ("def main = grad (fun x -> (x, x)) 1.0", (1, 18), ["`grad` differentiates functions of type 'a -> Real"]),
    ("def main = grad (fun x -> x) true", (1, 30), ["the function given to `grad` takes Real",
                                                   "the point `true` has type Bool"]),
    ("def main = jvp (fun x -> x * 2.0) 1.0 true", (1, 39), ["the tangent given to `jvp` (like the point) must be "
                                                              "a real number"]),
]


@pytest.mark.parametrize("source,where,phrases", TYPE_ERRORS, ids=[t[0] for t in TYPE_ERRORS])
def test_type_errors(source, where, phrases):
    with pytest.raises(DlError) as info:
        load_source(source)
    err = info.value
    assert err.kind == "type", err.message
    assert (err.span.line, err.span.col) == where, err.message
    for phrase in phrases:
        assert phrase in err.message


NAME_ERRORS_IN_TYPES = [
    ("def f = (1 : Foo)", (1, 14), "unknown type `Foo`"),
    ("def f = fun (x : real) -> x", (1, 18), "unknown type `real`"),
    ("def f = (1 : Ordered 'a => 'a)", (1, 14), "unknown class `Ordered`"),
    ("def f = (1 : d)", (1, 14), "unknown type `d`"),
]


@pytest.mark.parametrize("source,where,phrase", NAME_ERRORS_IN_TYPES, ids=[t[0] for t in NAME_ERRORS_IN_TYPES])
def test_unknown_names_in_types(source, where, phrase):
    with pytest.raises(DlError) as info:
        load_source(source)
    assert info.value.kind == "name"
    assert (info.value.span.line, info.value.span.col) == where
    assert phrase in info.value.message


def test_target_language_types_are_refused_in_programs():
    with pytest.raises(DlError) as info:
        load_source("def f = (1.0 : ~Real)")
    assert info.value.kind == "type" and "only in the types of transformed terms" in info.value.message
    assert (info.value.span.line, info.value.span.col) == (1, 16)

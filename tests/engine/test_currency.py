"""Money keeps its currency: a pack may set the currency of its money fields that name none, and an amount is never
mapped into a field of another currency."""
from __future__ import annotations

from engine.compiler import compile_model
from engine.loader import load, load_model

ORDER = """
kind: entity
name: order
fields:
  total: {type: money, currency: EUR}
"""


def form(budget: str) -> str:
    return f"""
kind: form
name: quote
fields:
  budget: {budget}
on_submit:
  - create: order
    set:
      total: budget
"""


def problems(*folders) -> list[str]:
    _, found = load_model(folders)
    return [str(p) for p in found]


def test_an_amount_in_pounds_mapped_into_a_field_in_euros_is_a_located_problem(packs):
    folder = packs.write("p", {"order.yaml": ORDER, "quote.yaml": form("{type: money, currency: GBP}")})
    assert problems(folder) == [
        "p/quote.yaml:8:14: currency mismatch: form field 'budget' is an amount in GBP but 'total' is an amount in EUR; amounts are "
        "not converted between currencies (map it into a money field in GBP) [mapping.currency]"]


def test_an_amount_in_the_same_currency_or_a_whole_number_maps(packs):
    folder = packs.write("p", {"order.yaml": ORDER, "quote.yaml": form("{type: money, currency: EUR}")})
    assert problems(folder) == []
    folder = packs.write("q", {"order.yaml": ORDER, "quote.yaml": form("integer")})
    assert problems(folder) == []


def test_a_pack_s_currency_is_that_of_its_money_fields_that_name_none(packs):
    folder = packs.write("p", {"pack.yaml": "kind: pack\nname: p\nversion: 1.0.0\ncurrency: EUR\n",
                               "order.yaml": ORDER.replace("{type: money, currency: EUR}", "money"),
                               "quote.yaml": form("{type: money, min: 0}")})
    model = load([folder])
    assert model.packs[0].currency == "EUR"
    assert model.entities["order"].field("total").currency == "EUR" and model.forms["quote"].field("budget").currency == "EUR"
    compiled = compile_model(model)
    assert compiled.entity_schemas["order"]["properties"]["total"]["x-tailor-currency"] == "EUR"
    assert compiled.form_layouts["quote"]["sections"][0]["fields"][0]["currency"] == "EUR"


def test_a_client_pack_s_currency_is_checked_against_its_base_s_fields(packs):
    """The base's order is in euros; the client pack works in pounds, so its quote form's budget is in pounds."""
    base = packs.write("base", {"order.yaml": ORDER})
    client = packs.write("client", {"pack.yaml": "kind: pack\nname: client\nversion: 1.0.0\ncurrency: GBP\nextends: {base: '>=1'}\n",
                                    "quote.yaml": form("money")})
    assert problems(base, client) == [
        "client/quote.yaml:8:14: currency mismatch: form field 'budget' is an amount in GBP but 'total' is an amount in EUR; amounts "
        "are not converted between currencies (map it into a money field in GBP) [mapping.currency]"]


def test_a_pack_currency_is_an_iso_code(packs):
    folder = packs.write("p", {"pack.yaml": "kind: pack\nname: p\nversion: 1.0.0\ncurrency: euro\n"})
    assert problems(folder) == [
        "p/pack.yaml:4:11: expected an ISO 4217 currency code like EUR in 'currency', found 'euro' [schema.pattern]"]

"""Cross-field checks of a scenario: every id a field names (vendor, product, cloud, lab,
ecosystem) must exist, packaging shares must add up to at most 1, and an anchor deal must be one
its cloud can serve. Each problem is a ValueError naming the dotted path and what is allowed."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from market.scenario.schema import Deal, Scenario, WithholdingRule

__all__ = ["check_references"]


def check_references(sc: Scenario) -> None:
    """Cross-field checks: every id a field names must exist. Raises ValueError with a path."""

    def need(path: str, value: str | None, known: Mapping[str, Any] | set[str], what: str) -> None:
        if value is not None and value not in known:
            raise ValueError(f"{path}: unknown {what} {value!r}; allowed: {', '.join(sorted(known)) or 'none'}")

    labs = set(sc.labs)
    clouds = set(sc.clouds) | {f"{lab}_dc" for lab, cfg in sc.labs.items() if cfg.own_datacenter}

    def rule(path: str, r: WithholdingRule | None, buyers: set[str]) -> None:
        if r is None:
            return
        need(f"{path}.vendor", r.vendor, sc.vendors, "vendor")
        for i, p in enumerate(r.products):
            need(f"{path}.products[{i}]", p, sc.products, "product")
        for i, b in enumerate(r.buyers):
            if b != "*":
                need(f"{path}.buyers[{i}]", b, buyers, "buyer")
        for i, b in enumerate(r.except_buyers):
            need(f"{path}.except_buyers[{i}]", b, buyers, "buyer")

    for pid, p in sc.products.items():
        need(f"products.{pid}.vendor", p.vendor, sc.vendors, "vendor")
        if p.end_of_sale_step is not None and p.end_of_sale_step <= p.release_step:
            raise ValueError(f"products.{pid}.end_of_sale_step: must be after release_step ({p.release_step})")
    for vid, v in sc.vendors.items():
        for i, b in enumerate(v.buyers):
            need(f"vendors.{vid}.buyers[{i}]", b, clouds, "cloud")
        rule(f"vendors.{vid}.withholding", v.withholding, clouds | labs)
        if not any(p.vendor == vid for p in sc.products.values()):
            raise ValueError(f"vendors.{vid}: has no products; add one under [products.<id>] with vendor = {vid!r}")
    total = sum(v.packaging_share for v in sc.vendors.values())
    if total > 1.0 + 1e-9:
        raise ValueError(f"vendors.*.packaging_share: shares add up to {total:.3f}; allowed: at most 1")
    for cid, c in sc.clouds.items():
        need(f"clouds.{cid}.vendor", c.vendor, sc.vendors, "vendor")
        need(f"clouds.{cid}.owner_lab", c.owner_lab, sc.labs, "lab")
        for p in c.fleet:
            need(f"clouds.{cid}.fleet.{p}", p, sc.products, "product")
        for p in c.on_order:
            need(f"clouds.{cid}.on_order.{p}", p, sc.products, "product")
        for p in c.rental_price_usd_per_chip_hour:
            need(f"clouds.{cid}.rental_price_usd_per_chip_hour.{p}", p, sc.products, "product")
        for i, v in enumerate(c.buys):
            need(f"clouds.{cid}.buys[{i}]", v, sc.vendors, "vendor")
        for i, lab in enumerate(c.serves):
            if lab != "*":
                need(f"clouds.{cid}.serves[{i}]", lab, labs, "lab")
        for v, allowed in c.vendor_access.items():
            need(f"clouds.{cid}.vendor_access.{v}", v, sc.vendors, "vendor")
            for i, lab in enumerate(allowed):
                if lab != "*":
                    need(f"clouds.{cid}.vendor_access.{v}[{i}]", lab, labs, "lab")
        rule(f"clouds.{cid}.withholding", c.withholding, labs)
    for pid, deal in sc.partnerships.items():
        need(f"partnerships.{pid}.lab", deal.lab, sc.labs, "lab")
        for i, c in enumerate(deal.clouds):
            need(f"partnerships.{pid}.clouds[{i}]", c, clouds, "cloud")
    for did, deal in sc.deals.items():
        _check_deal(sc, f"deals.{did}", deal, clouds, need)
    for lid, lab in sc.labs.items():
        need(f"labs.{lid}.affiliation", lab.affiliation, sc.vendors, "vendor")
        for i, v in enumerate(lab.uses_vendors):
            if v != "*":
                need(f"labs.{lid}.uses_vendors[{i}]", v, sc.vendors, "vendor")
        if lab.own_datacenter:
            for p in lab.own_datacenter.fleet:
                need(f"labs.{lid}.own_datacenter.fleet.{p}", p, sc.products, "product")
            for p in lab.own_datacenter.on_order:
                need(f"labs.{lid}.own_datacenter.on_order.{p}", p, sc.products, "product")
            for i, v in enumerate(lab.own_datacenter.buys):
                need(f"labs.{lid}.own_datacenter.buys[{i}]", v, sc.vendors, "vendor")
    ecosystems = {v.ecosystem for v in sc.vendors.values()}
    holders = [*((f"labs.{lid}", lab) for lid, lab in sc.labs.items()), ("long_tail", sc.long_tail)]
    for path, holder in holders:  # the named labs and the long tail name ecosystems the same way
        for e in holder.readiness:
            need(f"{path}.readiness.{e}", e, ecosystems, "ecosystem")
        for purpose, used in holder.in_use.items():
            for i, e in enumerate(used):
                need(f"{path}.in_use.{purpose}[{i}]", e, ecosystems, "ecosystem")


def _check_deal(sc: Scenario, path: str, deal: Deal, clouds: set[str], need: Callable[..., None]) -> None:
    """An anchor deal names a lab, a public cloud, and a vendor or product the cloud can get and
    may rent to that lab."""
    need(f"{path}.lab", deal.lab, sc.labs, "lab")
    need(f"{path}.cloud", deal.cloud, sc.clouds, "public cloud (a lab's own data centres sign no deals)")
    need(f"{path}.lessee", deal.lessee, set(sc.clouds) - {deal.cloud}, "public cloud other than the lessor")
    need(f"{path}.vendor", deal.vendor, sc.vendors, "vendor")
    need(f"{path}.product", deal.product, sc.products, "product")
    cloud = sc.clouds[deal.cloud]
    vendor_id = deal.vendor or sc.products[deal.product].vendor
    vendor = sc.vendors[vendor_id]
    has = {p for p in (*cloud.fleet, *cloud.on_order) if sc.products[p].vendor == vendor_id}
    if deal.sign_step < 0 and not has:
        raise ValueError(f"{path}.sign_step: a deal signed before the run ({deal.sign_step}) is served from the "
                         f"cloud's fleet and orders, and {deal.cloud!r} has no {vendor_id!r} chips in either; "
                         f"allowed: add them to clouds.{deal.cloud}.fleet or on_order, or sign at step 0 or later")
    if deal.sign_step >= 0:
        if vendor_id not in cloud.buys or not vendor.sells_to(vendor_id, deal.cloud, cloud.vendor):
            raise ValueError(f"{path}.cloud: {deal.cloud!r} cannot order {vendor_id!r} chips for the deal (its "
                             f"buys list or the vendor's channel); allowed: a cloud that buys from {vendor_id!r}")
    if deal.lab is None:
        return  # a lease: the lessee's own rules decide whom it rents the chips to
    if not sc.labs[deal.lab].uses(vendor_id):
        raise ValueError(f"{path}.lab: {deal.lab!r} does not rent {vendor_id!r} chips (labs.{deal.lab}.uses_vendors: "
                         f"{', '.join(sc.labs[deal.lab].uses_vendors)}); allowed: a deal for a vendor the lab uses")
    if not cloud.rents_to(deal.lab, vendor_id, sc.labs[deal.lab].affiliation):
        raise ValueError(f"{path}.lab: {deal.cloud!r} does not rent {vendor_id!r} chips to {deal.lab!r} "
                         f"(clouds.{deal.cloud}.serves: {', '.join(cloud.serves)}; clouds.{deal.cloud}.vendor_access."
                         f"{vendor_id}: {', '.join(cloud.vendor_access.get(vendor_id, ['*']))}); allowed: a lab "
                         f"both lists admit")

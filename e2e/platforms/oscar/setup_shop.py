"""Creates the stock Oscar shop's state in OSCAR_SHOP_DATA: the database (Django's migrations), a
"Sneakers" category and a nested "Shoes > Running" one, five sneakers with prices and stock, the
voucher SNEAKERS10 (10% off sneakers), a shopper and a superuser for /dashboard/, and the Whoosh
search index Oscar's category pages list products from.

    OSCAR_SHOP_DATA=/tmp/shop python -m e2e.platforms.oscar.setup_shop
"""

from __future__ import annotations

import datetime
import os
from decimal import Decimal

import django

SNEAKERS = (  # (slug-like UPC, title, price in GBP, stock, also a running shoe)
    ("trail-runner", "Trail Runner", "129.00", 12, True),
    ("court-classic", "Court Classic", "89.00", 20, False),
    ("city-knit", "City Knit", "110.00", 8, False),
    ("track-spike", "Track Spike", "150.00", 5, True),
    ("canvas-low", "Canvas Low", "55.00", 30, False),
)
VOUCHER_CODE = "SNEAKERS10"
ADMIN = ("admin@example.com", "admin-password")
SHOPPER = ("shopper@example.com", "shopper-password")


def create_catalogue() -> None:
    from oscar.apps.catalogue.categories import create_from_breadcrumbs
    from oscar.apps.catalogue.models import Product, ProductCategory, ProductClass
    from oscar.apps.partner.models import Partner, StockRecord

    sneakers = create_from_breadcrumbs("Sneakers")
    running = create_from_breadcrumbs("Shoes > Running")
    shoe = ProductClass.objects.create(name="Shoe", track_stock=True, requires_shipping=True)
    partner = Partner.objects.create(name="Sneaker warehouse")
    for upc, title, price, stock, is_running in SNEAKERS:
        product = Product.objects.create(product_class=shoe, title=title, upc=upc, structure="standalone",
                                         description=f"{title}: a sneaker for every day.")
        ProductCategory.objects.create(product=product, category=sneakers)
        if is_running:
            ProductCategory.objects.create(product=product, category=running)
        StockRecord.objects.create(product=product, partner=partner, partner_sku=upc,
                                   price_currency="GBP", price=Decimal(price), num_in_stock=stock)


def create_voucher() -> None:
    from django.utils import timezone
    from oscar.apps.catalogue.models import Category
    from oscar.apps.offer.models import Benefit, Condition, ConditionalOffer, Range
    from oscar.apps.voucher.models import Voucher

    sneakers = Range.objects.create(name="Sneakers")
    sneakers.included_categories.add(Category.objects.get(name="Sneakers"))
    offer = ConditionalOffer.objects.create(
        name="10% off sneakers", offer_type=ConditionalOffer.VOUCHER,
        condition=Condition.objects.create(range=sneakers, type=Condition.COUNT, value=1),
        benefit=Benefit.objects.create(range=sneakers, type=Benefit.PERCENTAGE, value=10),
    )
    now = timezone.now()
    voucher = Voucher.objects.create(name="Sneakers 10%", code=VOUCHER_CODE, usage=Voucher.MULTI_USE,
                                     start_datetime=now - datetime.timedelta(days=1),
                                     end_datetime=now + datetime.timedelta(days=3650))
    voucher.offers.add(offer)


def create_users() -> None:
    from django.contrib.auth import get_user_model

    users = get_user_model()
    users.objects.create_superuser(username="admin", email=ADMIN[0], password=ADMIN[1])
    users.objects.create_user(username="shopper", email=SHOPPER[0], password=SHOPPER[1])


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "e2e.platforms.oscar.settings")
    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    create_catalogue()
    create_voucher()
    create_users()
    call_command("rebuild_index", interactive=False, verbosity=0)


if __name__ == "__main__":
    main()

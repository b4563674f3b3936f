"""A stock Django Oscar shop (PyPI django-oscar 4.2.1, Django 5.2, waitress) behind nudge on
workerd, configured only by rules/: its pages and files come through, its own forms work (Django
checks CSRF against X-Forwarded-Host and reads no body without Content-Length), and its dashboard
is passed through untouched ([site] exclude's defaults)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from e2e.conftest import OSCAR_RULES, Stack, edge_in_front_of
from e2e.platforms.oscar.setup_shop import ADMIN, SHOPPER, SNEAKERS
from e2e.platforms.oscar.shop import oscar_shop

SNEAKERS_PAGE = "/catalogue/category/sneakers_1/"
TRAIL_RUNNER = "/catalogue/trail-runner_1/"
_CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def browser_like(stack: Stack) -> httpx.Client:
    """A client on the edge that keeps cookies and sends Origin on POSTs, as browsers do."""
    return httpx.Client(base_url=stack.edge, timeout=30, headers={"origin": stack.edge})


@pytest.fixture
def shopper(oscar_stack: Stack) -> Iterator[httpx.Client]:
    with browser_like(oscar_stack) as c:
        yield c


@pytest.fixture(scope="module", params=["waitress", "runserver"])
def forms_stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The shop's forms under two WSGI servers: waitress de-chunks a body itself; Django's own
    server reads none without Content-Length (so does mod_wsgi by default)."""
    if request.param == "waitress":
        yield request.getfixturevalue("oscar_stack")
        return
    with oscar_shop(tmp_path_factory.mktemp("oscar-runserver") / "shop", "runserver") as shop, \
            edge_in_front_of(shop.url, tmp_path_factory.mktemp("kv-oscar-runserver"), OSCAR_RULES) as stack:
        yield stack


@pytest.fixture
def form_filler(forms_stack: Stack) -> Iterator[httpx.Client]:
    with browser_like(forms_stack) as c:
        yield c


def nudge_cookies(resp: httpx.Response) -> list[str]:
    return [c for c in resp.headers.get_list("set-cookie") if c.startswith("nudge")]


def form_token(client: httpx.Client, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text[:500]
    match = _CSRF.search(page.text)
    assert match is not None, f"no CSRF token on {path}"
    return match.group(1)


def post_form(client: httpx.Client, path: str, fields: dict[str, str], encoding: str) -> httpx.Response:
    """Posts `fields` url-encoded, as multipart, or url-encoded with no length (chunked, as a
    request reaches a Worker with no Content-Length, over HTTP/2 or through wrangler's proxy)."""
    if encoding == "multipart":
        return client.post(path, files={name: (None, value) for name, value in fields.items()})
    if encoding == "chunked":
        body = str(httpx.QueryParams(fields)).encode()
        return client.post(path, content=iter([body[:10], body[10:]]),
                           headers={"content-type": "application/x-www-form-urlencoded"})
    return client.post(path, data=fields)


def test_pages_come_through_personalized(oscar_stack: Stack, shopper: httpx.Client) -> None:
    r = shopper.get(SNEAKERS_PAGE)
    assert r.status_code == 200
    for _, title, *_ in SNEAKERS:
        assert f'title="{title}"' in r.text
    assert 'id="nudge-config"' in r.text and len(nudge_cookies(r)) == 1
    nested = shopper.get("/catalogue/category/shoes/running_3/")
    assert nested.status_code == 200 and 'title="Trail Runner"' in nested.text


def test_static_and_media_files_pass_byte_identical(oscar_stack: Stack, shopper: httpx.Client) -> None:
    page = shopper.get(SNEAKERS_PAGE).text
    files = re.findall(r'(?:href|src)="(/static/[^"]+\.(?:css|js))"', page)[:3]
    files += re.findall(r'<img src="(/media/[^"]+)"', page)[:1]
    assert len(files) == 4, files
    with httpx.Client(base_url=oscar_stack.shop, timeout=30) as direct:
        for path in files:
            through, origin = shopper.get(path), direct.get(path)
            assert through.status_code == origin.status_code == 200, path
            assert through.content == origin.content and nudge_cookies(through) == []


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart", "chunked"])
def test_add_to_basket_form_posts_reach_the_shop(form_filler: httpx.Client, encoding: str) -> None:
    token = form_token(form_filler, TRAIL_RUNNER)
    added = post_form(form_filler, "/basket/add/1/", {"csrfmiddlewaretoken": token, "quantity": "2"}, encoding)
    assert added.status_code == 302, added.text[:500]  # Oscar's redirect after adding; a CSRF refusal is 403
    basket = form_filler.get("/basket/")
    assert "Trail Runner" in basket.text
    assert re.search(r'name="form-0-quantity"[^>]*value="2"', basket.text), "the basket holds 2 Trail Runners"


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart", "chunked"])
def test_login_form_posts_reach_the_shop(form_filler: httpx.Client, encoding: str) -> None:
    token = form_token(form_filler, "/accounts/login/")
    fields = {"csrfmiddlewaretoken": token, "login-username": SHOPPER[0], "login-password": SHOPPER[1],
              "login-redirect_url": "", "login_submit": "Log In"}
    logged_in = post_form(form_filler, "/accounts/login/", fields, encoding)
    assert logged_in.status_code == 302, logged_in.text[:500]
    profile = form_filler.get("/accounts/profile/")
    assert profile.status_code == 200 and SHOPPER[0] in profile.text


def test_the_dashboard_is_passed_through_untouched(shopper: httpx.Client) -> None:
    assert len(nudge_cookies(shopper.get(SNEAKERS_PAGE))) == 1  # a visitor with a session
    login_page = shopper.get("/dashboard/login/")
    token = _CSRF.search(login_page.text)
    assert token is not None
    fields = {"csrfmiddlewaretoken": token.group(1), "username": ADMIN[0], "password": ADMIN[1]}
    logged_in = shopper.post("/dashboard/login/", data=fields)
    assert logged_in.status_code == 302, logged_in.text[:500]
    dashboard = shopper.get("/dashboard/")
    assert dashboard.status_code == 200 and "Dashboard" in dashboard.text
    for r in (login_page, logged_in, dashboard):
        assert "nudge" not in r.text.lower(), r.url  # no markup, no script, no style
        assert nudge_cookies(r) == [], r.url  # no cookie set, none renewed
    assert "nudge" in dashboard.request.headers["cookie"]  # the browser did send nudge's cookie

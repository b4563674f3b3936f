from __future__ import annotations

import pytest

from nudge.visitor.privacy import ConsentPolicy, is_automated, may_track, parse_consent_mode

# --- automated traffic -------------------------------------------------------------------------

BOTS = [
    # Search engines
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.6778.69 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Googlebot-Image/1.0",
    "AdsBot-Google (+http://www.google.com/adsbot.html)",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 14_7_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/14.1.2 Mobile/15E148 Safari/604.1 (compatible; AdsBot-Google-Mobile; "
    "+http://www.google.com/mobile/adsbot.html)",
    "Mediapartners-Google",
    "Mozilla/5.0 (compatible; Google-InspectionTool/1.0;)",
    "Mozilla/5.0 (X11; Linux x86_64; Storebot-Google/1.0) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/79.0.3945.88 Safari/537.36",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; "
    "+http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36",
    "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/534+ (KHTML, like Gecko) BingPreview/1.0b",
    "Mozilla/5.0 (compatible; Yahoo! Slurp; http://help.yahoo.com/help/us/ysearch/slurp)",
    "DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)",
    "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
    "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
    "Sogou web spider/4.0(+http://www.sogou.com/docs/help/webmasters.htm#07)",
    "Mozilla/5.0 (compatible; Exabot/3.0; +http://www.exabot.com/go/robot)",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)",
    "Mozilla/5.0 (Linux; Android 7.0;) AppleWebKit/537.36 (KHTML, like Gecko) Mobile Safari/537.36 "
    "(compatible; PetalBot;+https://webmaster.petalsearch.com/site/petalbot)",
    # Link previews
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Facebot",
    "Twitterbot/1.0",
    "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
    "Mozilla/5.0 (compatible; Pinterestbot/1.0; +http://www.pinterest.com/bot.html)",
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
    "TelegramBot (like TwitterBot)",
    "WhatsApp/2.23.20.0 A",
    # SEO crawlers
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)",
    "Mozilla/5.0 (compatible; MJ12bot/v1.4.8; http://mj12bot.com/)",
    "Mozilla/5.0 (compatible; DotBot/1.2; +https://opensiteexplorer.org/dotbot; help@moz.com)",
    # AI crawlers and assistants
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.1; +https://openai.com/gptbot)",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; ChatGPT-User/1.0; "
    "+https://openai.com/bot",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; OAI-SearchBot/1.0; "
    "+https://openai.com/searchbot",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ClaudeBot/1.0; +claudebot@anthropic.com)",
    "anthropic-ai",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; PerplexityBot/1.0; "
    "+https://perplexity.ai/perplexitybot)",
    "CCBot/2.0 (https://commoncrawl.org/faq/)",
    "Mozilla/5.0 (Linux; Android 5.0) AppleWebKit/537.36 (KHTML, like Gecko) Mobile Safari/537.36 "
    "(compatible; Bytespider; spider-feedback@bytedance.com)",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Amazonbot/0.1; "
    "+https://developer.amazon.com/support/amazonbot) Chrome/119.0.6045.214 Safari/537.36",
    # Caught only by the generic tokens
    "Mozilla/5.0 (compatible; SeznamBot/4.0; "
    "+https://o-seznam.cz/napoveda/vyhledavani/en/seznambot-crawler/)",
    "Screaming Frog SEO Spider/20.0",
    "Mozilla/5.0 (compatible; MojeekBot/0.11; +https://www.mojeek.com/bot.html)",
    "MyCrawler/1.0 (Apache Nutch)",
]

PEOPLE = [
    # Chrome desktop, Chrome Android, Safari iOS, Firefox, Edge, Samsung Internet
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
    "Safari/537.36",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
    "Mobile Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
    "Safari/537.36 Edg/131.0.0.0",
    "Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
    # Our own tools: Playwright's HeadlessChrome and the runtime tests' HTTP clients
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.6778.33 "
    "Safari/537.36",
    "curl/8.5.0",
    "python-httpx/0.28.1",
    "Wget/1.21.4",
    "python-requests/2.32.3",
    # People whose UA is close to a bot's name
    "Mozilla/5.0 (Linux; Android 10; CUBOT_X30) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 "
    "Mobile Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148 [FBAN/FBIOS;FBAV/470.0.0.40.106;FBDV/iPhone14,5;FBMD/iPhone;FBSN/iOS;FBSV/17.5;"
    "FBLC/en_US]",
    "Mozilla/5.0 (Linux; Android 10; V2031A) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/89.0.4389.72 "
    "Mobile Safari/537.36 SogouMobileBrowser/5.28.12",
    "",
]


@pytest.mark.parametrize("ua", BOTS)
def test_declared_bots_are_automated(ua: str) -> None:
    assert is_automated({"user-agent": ua})


@pytest.mark.parametrize("ua", PEOPLE)
def test_browsers_and_our_tools_are_not_automated(ua: str) -> None:
    assert not is_automated({"user-agent": ua})


def test_a_missing_user_agent_is_not_automated() -> None:
    assert not is_automated({})


def test_the_verdict_is_the_same_asked_again_and_for_overlong_user_agents() -> None:
    # verdicts are remembered per user agent, except for ones too long to keep
    padded = "Mozilla/5.0 " + "x" * 600
    for _ in range(2):
        assert is_automated({"user-agent": padded + " Googlebot/2.1"})
        assert not is_automated({"user-agent": padded})
        assert is_automated({"user-agent": BOTS[0]}) and not is_automated({"user-agent": PEOPLE[0]})


@pytest.mark.parametrize(
    ("headers", "automated"),
    [
        ({"sec-purpose": "prefetch"}, True),
        ({"sec-purpose": "prefetch;prerender"}, True),
        ({"sec-purpose": "prefetch;anonymous-client-ip"}, True),
        ({"sec-purpose": "Prerender"}, True),
        ({"purpose": "prefetch"}, True),
        ({"x-purpose": "preview"}, True),
        ({"x-moz": "prefetch"}, True),
        ({"sec-purpose": ""}, False),
        ({"purpose": "preview"}, False),  # only Safari's X-Purpose means a thumbnail
        ({"x-moz": "something-else"}, False),
        ({"sec-fetch-dest": "document", "sec-fetch-mode": "navigate"}, False),
    ],
)
def test_prefetch_headers(headers: dict[str, str], automated: bool) -> None:
    ua = {"user-agent": PEOPLE[0]}
    assert is_automated(ua | headers) is automated


# --- consent -------------------------------------------------------------------------------------

COOKIE = "shop_consent"

CONSENT = [
    # (signal, headers, cookies, then tracked? under modes none, gpc, opt-in)
    ("no signal", {}, {}, True, True, False),
    ("Sec-GPC: 1", {"sec-gpc": "1"}, {}, True, False, False),
    ("DNT: 1", {"dnt": "1"}, {}, True, False, False),
    ("Sec-GPC: 0", {"sec-gpc": "0"}, {}, True, True, False),
    ("DNT: 0", {"dnt": "0"}, {}, True, True, False),
    ("cookie yes", {}, {COOKIE: "yes"}, True, True, True),
    ("cookie no", {}, {COOKIE: "no"}, True, True, False),
    ("cookie garbage", {}, {COOKIE: "\x00%zz{["}, True, True, False),
    ("other cookie yes", {}, {"consent": "yes"}, True, True, False),
    ("cookie yes + GPC", {"sec-gpc": "1"}, {COOKIE: "yes"}, True, False, True),  # explicit consent wins
    ("cookie yes + DNT", {"dnt": "1"}, {COOKIE: "granted"}, True, False, True),
    ("cookie no + GPC", {"sec-gpc": "1"}, {COOKIE: "no"}, True, False, False),
]


@pytest.mark.parametrize(
    ("mode", "headers", "cookies", "tracked"),
    [
        pytest.param(mode, headers, cookies, expected[i], id=f"{mode}-{signal}")
        for signal, headers, cookies, *expected in CONSENT
        for i, mode in enumerate(("none", "gpc", "opt-in"))
    ],
)
def test_consent_matrix(mode: str, headers: dict[str, str], cookies: dict[str, str], tracked: bool) -> None:
    policy = ConsentPolicy.from_config(mode, COOKIE)
    assert may_track(policy, headers, cookies) is tracked


@pytest.mark.parametrize(
    ("value", "tracked"),
    [
        ("1", True),
        ("true", True),
        ("TRUE", True),
        ("Yes", True),
        (" granted ", True),
        ("allow", True),
        ("Accepted", True),
        ("%20yes%20", True),  # URL-decoded, then stripped
        ("0", False),
        ("false", False),
        ("denied", False),
        ("rejected", False),
        ("", False),
        ("yes please", False),
        ('{"analytics":true}', False),
        ("groups=C0001:1,C0004:1", False),  # vendor formats are not parsed
    ],
)
def test_consent_cookie_spellings(value: str, tracked: bool) -> None:
    policy = ConsentPolicy.from_config("opt-in", COOKIE)
    assert may_track(policy, {}, {COOKIE: value}) is tracked


# --- configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "mode"),
    [(None, "none"), ("", "none"), ("  ", "none"), ("none", "none"), ("gpc", "gpc"), (" GPC ", "gpc"),
     ("opt-in", "opt-in"), ("Opt-In", "opt-in")],
)
def test_parse_consent_mode(value: str | None, mode: str) -> None:
    assert parse_consent_mode(value) == mode


@pytest.mark.parametrize("value", ["optin", "opt_in", "off", "all", "yes", "dnt", "gpc,opt-in"])
def test_unknown_modes_are_errors_naming_the_valid_ones(value: str) -> None:
    with pytest.raises(ValueError, match="none, gpc, opt-in"):
        parse_consent_mode(value)
    with pytest.raises(ValueError, match="unknown consent mode"):
        ConsentPolicy.from_config(value, COOKIE)


@pytest.mark.parametrize("cookie", [None, "", "   "])
def test_opt_in_needs_a_cookie_name(cookie: str | None) -> None:
    with pytest.raises(ValueError, match="NUDGE_CONSENT_COOKIE"):
        ConsentPolicy.from_config("opt-in", cookie)


@pytest.mark.parametrize(
    ("mode", "cookie", "policy"),
    [
        (None, None, ConsentPolicy("none", None)),
        ("gpc", "", ConsentPolicy("gpc", None)),
        ("opt-in", " shop_consent ", ConsentPolicy("opt-in", "shop_consent")),
    ],
)
def test_from_config(mode: str | None, cookie: str | None, policy: ConsentPolicy) -> None:
    assert ConsentPolicy.from_config(mode, cookie) == policy


@pytest.mark.parametrize(("mode", "cookie"), [("GPC", None), ("bogus", None), ("opt-in", None)])
def test_direct_construction_is_validated_too(mode: str, cookie: str | None) -> None:
    with pytest.raises(ValueError):
        ConsentPolicy(mode, cookie)  # type: ignore[arg-type]

#!/usr/bin/env python3
"""The dashboard in a real browser: Debian's headless Chromium driven by
Selenium (python3-selenium, chromium-driver). Started by
tests/e2e/issue_10_dashboard_e2e_test.cpp, which runs the judger and
monitor-dashboard, writes the series and gives here what the judger's own
query API says of them (--expect). Screenshots go to --shots.

Checks, as a person would see them:
  1. the sign-in page; wrong password refused with a message;
  2. signed in, the services of the user's roles are listed, no other;
  3. a chart opened from its URL (a shared link) draws exactly what
     /api/series answers, and its values equal the judger's minutes;
  4. the yesterday overlay draws yesterday's minutes at today's times;
  5. another user without the role sees no service, and the chart's URL
     says the service is not theirs.
Exit 0 when all hold; otherwise each failure is printed and the exit is 1.
"""
import argparse
import json
import os
import sys
import time

from selenium.webdriver.common.by import By

from browser_support import check, chromium, failures, wait_for

parser = argparse.ArgumentParser()
parser.add_argument("--url", required=True)
parser.add_argument("--user", required=True)
parser.add_argument("--password", required=True)
parser.add_argument("--other-user", required=True)
parser.add_argument("--other-password", required=True)
parser.add_argument("--service", required=True)
parser.add_argument("--hidden-service", required=True)
parser.add_argument("--attr", required=True)
parser.add_argument("--servers", required=True)
parser.add_argument("--expect", required=True)
parser.add_argument("--shots", required=True)
args = parser.parse_args()
expect = json.load(open(args.expect))
os.makedirs(args.shots, exist_ok=True)
driver = chromium(f"{args.shots}/profile")
try:
    def shot(name):
        driver.save_screenshot(os.path.join(args.shots, name))

    def sign_in(user, password):
        driver.get(args.url + "/#/services")
        wait_for(lambda: driver.find_element(By.ID, "signin"), what="the sign-in form")
        form = driver.find_element(By.ID, "signin")
        form.find_element(By.NAME, "user").send_keys(user)
        form.find_element(By.NAME, "password").send_keys(password)
        form.find_element(By.TAG_NAME, "button").click()

    # 1. Sign-in, a wrong password first.
    sign_in(args.user, "wrong-" + args.password)
    message = wait_for(lambda: driver.find_element(By.ID, "signin-error").text, what="the refusal")
    check("wrong user or password" in message, f"a wrong password is refused: {message!r}")
    shot("01-signin-refused.png")
    sign_in(args.user, args.password)

    # 2. The services of the user's roles, no other.
    table = wait_for(lambda: driver.find_element(By.ID, "services"), what="the services table")
    listed = [a.text for a in table.find_elements(By.CSS_SELECTOR, "td:first-child a")]
    check(args.service in listed, f"{args.service} is listed ({listed})")
    check(args.hidden_service not in listed, f"{args.hidden_service}, not of the user's roles, is not listed")
    shot("02-services.png")

    # 3. A chart from its URL, as a shared link: reload on it.
    chart_hash = f"#/chart?service={args.service}&attr={args.attr}&op=SUM&servers={args.servers}&range=24h&shift=1d"
    driver.get(args.url + "/" + chart_hash)
    driver.refresh()
    started = time.monotonic()
    chart = wait_for(lambda: driver.execute_script("return window.monitorCharts.main ? window.monitorCharts.main.answer : null"),
                     what="the chart")
    print(f"chart drawn {time.monotonic() - started:.2f} s after the reload", flush=True)
    data = driver.execute_script("return window.monitorCharts.main.data")
    # What the API answers for the same query, fetched by the page with its session.
    again = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        f"fetch('/api/series?service={args.service}&attr={args.attr}&op=SUM&servers={args.servers}'"
        " + '&from=' + arguments[0] + '&to=' + arguments[1] + '&step=60&shift=0,1d')"
        ".then(r => r.json()).then(done);", chart["from"], chart["to"])
    check(again["series"] == chart["series"], "the chart's lines are what /api/series answers")
    xs = data[0]
    for i, line in enumerate(chart["series"]):
        drawn = {x: y for x, y in zip(xs, data[i + 1]) if y is not None}
        answered = {t: v for t, v in line["points"]}
        check(drawn == answered, f"line {line['server']} shift {line['shift']}: drawn points equal the answer "
                                 f"({len(drawn)} points)")
        key = "today" if line["shift"] == 0 else "yesterday_shifted"
        for t, v in expect[key].get(line["server"], {}).items():
            check(drawn.get(int(t)) == v, f"line {line['server']} shift {line['shift']} at {t}: {drawn.get(int(t))} "
                                          f"is the judger's {v}")
    labels = driver.execute_script("return window.monitorCharts.main.plot.series.map(s => s.label)")
    check("total (1d ago)" in labels, f"the overlay of yesterday is drawn ({labels})")
    shot("03-chart-with-yesterday.png")

    # 4. Several attrs of the service on one page.
    driver.get(args.url + f"/#/service?service={args.service}&range=24h")
    wait_for(lambda: driver.execute_script(f"return window.monitorCharts['attr:{args.attr}']"), what="the attrs page")
    shot("04-service-attrs.png")

    # 5. Another user, without the role.
    driver.find_element(By.XPATH, "//button[text()='Sign out']").click()
    sign_in(args.other_user, args.other_password)
    note = wait_for(lambda: driver.find_element(By.CSS_SELECTOR, "main p.note").text, what="the empty services page")
    check("no service" in note, f"a user without the role sees no service: {note!r}")
    driver.get(args.url + "/" + chart_hash)
    driver.refresh()
    refused = wait_for(lambda: driver.find_element(By.CSS_SELECTOR, "#chart-status .error").text, what="the refusal")
    check("not a service of your roles" in refused, f"the chart's URL is refused to them: {refused!r}")
    shot("05-other-user-refused.png")
finally:
    driver.quit()

print(f"screenshots in {args.shots}")
sys.exit(1 if failures else 0)

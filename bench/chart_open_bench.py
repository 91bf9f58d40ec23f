#!/usr/bin/env python3
"""Opens a chart in Debian's headless Chromium and prints, per run, the time
from the page starting to load to the chart drawn, beside the time of the
same /api/series request fetched alone in that page (the peer: what the data
costs; the rest is the page, its scripts and uPlot drawing). Started by
bench/dashboard_bench.cpp with a signed-in dashboard; prints one JSON line.

  chart_open_bench.py URL USER PASSWORD CHART_HASH RUNS
"""
import json
import statistics
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

url, user, password, chart_hash, runs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
options = webdriver.ChromeOptions()
options.binary_location = "/usr/bin/chromium"
for flag in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000", "--disable-gpu"]:
    options.add_argument(flag)
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def wait_for(fn, timeout=30):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            value = fn()
            if value:
                return value
        except Exception:
            pass
        time.sleep(0.01)
    raise SystemExit("chart_open_bench: timed out")


try:
    driver.get(url + "/#/services")
    form = wait_for(lambda: driver.find_element(By.ID, "signin"))
    form.find_element(By.NAME, "user").send_keys(user)
    form.find_element(By.NAME, "password").send_keys(password)
    form.find_element(By.TAG_NAME, "button").click()
    wait_for(lambda: driver.find_element(By.ID, "services"))
    drawn, fetched, points = [], [], 0
    for _ in range(runs):
        driver.get(url + "/" + chart_hash)
        driver.refresh()  # a fresh page load, as opening a shared link
        chart = wait_for(lambda: driver.execute_script(
            "const c = window.monitorCharts.main; return c ? {at: c.drawnAt, points: c.data.slice(1).reduce((n, s) => n + s.filter(v => v !== null).length, 0), from: c.answer.from, to: c.answer.to} : null"))
        drawn.append(chart["at"] / 1000)
        points = chart["points"]
        params = chart_hash.split("?", 1)[1]
        fetched.append(driver.execute_async_script(
            "const done = arguments[arguments.length - 1]; const q = new URLSearchParams(arguments[0]);"
            "q.set('from', arguments[1]); q.set('to', arguments[2]); q.delete('range');"
            "const t = performance.now(); fetch('/api/series?' + q).then(r => r.json()).then(() => done((performance.now() - t) / 1000));",
            params, chart["from"], chart["to"]))
    print(json.dumps({"drawn_s": statistics.median(drawn), "fetch_s": statistics.median(fetched), "points": points,
                      "runs": runs}))
finally:
    driver.quit()

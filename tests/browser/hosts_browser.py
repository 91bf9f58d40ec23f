#!/usr/bin/env python3
"""The dashboard's hosts list and host page in Debian's headless Chromium
(python3-selenium, chromium-driver). Started by
tests/e2e/issue_21_host_e2e_test.cpp, which runs a real agent collecting its
host, a Bonnie, a judger and monitor-dashboard, and gives here the host name
and server id it expects.

Checks, as a person would see them:
  1. the hosts list shows the host, its server id, its agent live, and its
     CPU, memory and disk figures as percentages;
  2. a click on a column header sorts by it (the URL says so);
  3. the host's page draws its CPU, memory, load and filesystem charts, each
     of that server only.
Exit 0 when all hold; otherwise each failure is printed and the exit is 1.
"""
import argparse
import os
import sys

from selenium.webdriver.common.by import By

from browser_support import check, chromium, failures, wait_for

parser = argparse.ArgumentParser()
parser.add_argument("--url", required=True)
parser.add_argument("--user", required=True)
parser.add_argument("--password", required=True)
parser.add_argument("--host", required=True)
parser.add_argument("--server", required=True)
parser.add_argument("--shots", required=True)
args = parser.parse_args()
os.makedirs(args.shots, exist_ok=True)


def is_percent(text):
    try:
        return 0 <= float(text) <= 100
    except ValueError:
        return False


driver = chromium(f"{args.shots}/profile")
try:
    driver.get(args.url + "/#/hosts")
    wait_for(lambda: driver.find_element(By.ID, "signin"), what="the sign-in form")
    form = driver.find_element(By.ID, "signin")
    form.find_element(By.NAME, "user").send_keys(args.user)
    form.find_element(By.NAME, "password").send_keys(args.password)
    form.find_element(By.TAG_NAME, "button").click()

    # 1. The hosts list.
    wait_for(lambda: driver.find_element(By.LINK_TEXT, "Hosts"), what="the navigation")
    driver.get(args.url + "/#/hosts")
    table = wait_for(lambda: driver.find_element(By.ID, "hosts"), what="the hosts table")
    rows = [[td.text for td in tr.find_elements(By.TAG_NAME, "td")] for tr in table.find_elements(By.TAG_NAME, "tr")[1:]]
    mine = [r for r in rows if r and r[0] == args.host]
    check(len(mine) == 1, f"the host {args.host} is listed once ({rows})")
    if mine:
        host, server, agent, cpu, memory, disk, load = mine[0]
        check(server == args.server, f"its server id is {args.server} ({server})")
        check(agent == "live", f"its agent is live ({agent})")
        check(is_percent(cpu), f"its CPU busy is a percentage ({cpu})")
        check(is_percent(memory) and float(memory) > 0, f"its memory used is a percentage above 0 ({memory})")
        check(is_percent(disk), f"its fullest disk is a percentage ({disk})")
    driver.save_screenshot(os.path.join(args.shots, "01-hosts.png"))

    # 2. Sorted by a column.
    driver.find_element(By.PARTIAL_LINK_TEXT, "CPU busy").click()
    wait_for(lambda: "sort=cpu_busy" in driver.current_url, what="the sorted list")
    wait_for(lambda: "▲" in driver.find_element(By.ID, "hosts").text, what="the sort mark")
    check(True, "the list sorts by CPU busy")

    # 3. The host's page.
    driver.find_element(By.LINK_TEXT, args.host).click()
    for attr in ["Cpu.Busy", "Mem.AvailablePermyriad", "Load.Avg1", "Fs.Root.UsedPermyriad"]:
        drawn = wait_for(lambda: driver.execute_script(f"return window.monitorCharts['host:{attr}']"),
                         what=f"the {attr} chart")
        lines = driver.execute_script(f"return window.monitorCharts['host:{attr}'].answer.series.map(s => s.server)")
        points = driver.execute_script(
            f"return window.monitorCharts['host:{attr}'].answer.series[0].points.length")
        check(lines == [args.server], f"the {attr} chart is of server {args.server} only ({lines})")
        check(points > 0, f"the {attr} chart has minutes ({points})")
    title = driver.find_element(By.TAG_NAME, "h1").text
    check(args.host in title and args.server in title, f"the page names the host and its server ({title!r})")
    driver.save_screenshot(os.path.join(args.shots, "02-host.png"))
finally:
    driver.quit()

print(f"screenshots in {args.shots}")
sys.exit(1 if failures else 0)

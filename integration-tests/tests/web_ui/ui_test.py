"""Braid's web UI in headless Chromium (selenium), as an operator uses it.

Usage: ui_test.py overview BASE_URL SHOTS_DIR
         the overview lists the nodes; a long query shows up running in the query list; its
         detail has stages and a timeline; the Kill button ends it; a finished query's stages
         show the bytes they wrote.
       ui_test.py login BASE_URL SHOTS_DIR PASSWORD
         with passwords on (over TLS): the login page refuses a wrong password and lets the
         right one in.
Prints one JSON object; screenshots go to SHOTS_DIR.
"""
import json
import sys

import requests
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

mode, base, shots = sys.argv[1], sys.argv[2].rstrip("/"), sys.argv[3]
# Two stages: partial counts over the splits, shuffled to the final counts.
GROUPED_QUERY = ("SELECT o_orderpriority, count(*) FROM tpch.sf1.orders "
                 "GROUP BY o_orderpriority")
LONG_QUERY = (
    "SELECT count(*), sum(l_quantity) FROM tpch.sf100.lineitem WHERE l_comment LIKE '%zebra%'"
)

options = Options()
for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
            "--window-size=1400,1100", "--ignore-certificate-errors"]:
    options.add_argument(arg)
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
wait = WebDriverWait(driver, 60)
out = {}


# The page redraws itself every second: elements are read and clicked in the page, at once,
# so that none goes stale between finding and using it.
def texts(selector):
    return driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map(e => e.innerText)", selector)


def text(selector):
    found = texts(selector)
    return found[0] if found else None


def click(selector):
    wait.until(lambda d: d.execute_script(
        "const e = document.querySelector(arguments[0]); if (e) e.click(); return !!e;",
        selector))


try:
    if mode == "overview":
        driver.get(base + "/ui/")
        wait.until(lambda d: len(texts("#nodes tbody tr")) >= 3)
        out["nodes"] = texts("#nodes tbody tr")
        out["workers_card"] = text("#card-workers b")
        driver.save_screenshot(f"{shots}/1-overview.png")

        # A long query through Trino's protocol: running on both workers for minutes.
        headers = {"X-Trino-User": "ann", "X-Trino-Source": "ui-test"}
        first = requests.post(base + "/v1/statement", data=LONG_QUERY, headers=headers,
                              timeout=30).json()
        query_id = first["id"]
        out["query_id"] = query_id
        row = f'#queries tbody tr[data-query-id="{query_id}"]'
        wait.until(lambda d: texts(row + " td.state") == ["RUNNING"])
        out["listed"] = texts(row)
        driver.save_screenshot(f"{shots}/2-running.png")

        click(row + " a.query-link")
        wait.until(lambda d: texts("#stages tbody tr") and texts("#timeline rect.task"))
        out["detail_state"] = text("#query-state")
        out["stages"] = texts("#stages tbody tr")
        out["task_bars"] = len(texts("#timeline rect.task"))
        # Bars on one lane never overlap (2 px is the narrowest bar drawn).
        bars = sorted((float(r.get_attribute("y")), float(r.get_attribute("x")),
                       float(r.get_attribute("width")))
                      for r in driver.find_elements(By.CSS_SELECTOR, "#timeline rect.task"))
        out["overlapping_bars"] = sum(
            1 for (y1, x1, w1), (y2, x2, _) in zip(bars, bars[1:])
            if y1 == y2 and x1 + w1 > x2 + 2.5)
        out["timeline_lanes"] = len({y for y, _, _ in bars})
        out["sql"] = text("#query-sql")
        out["plans"] = texts("pre.plan")
        driver.save_screenshot(f"{shots}/3-detail.png")

        click("#kill")
        wait.until(lambda d: text("#query-state") == "FAILED" and text("#query-error"))
        out["after_kill"] = text("#query-error")
        # No stage of the killed query reads as running.
        wait.until(lambda d: texts("#stages tbody tr"))
        out["stages_after_kill"] = texts("#stages tbody tr")
        driver.save_screenshot(f"{shots}/4-killed.png")

        # A finished query: each stage shows the bytes its tasks wrote (the result stage, the
        # bytes of the result).
        done = requests.post(base + "/v1/statement", data=GROUPED_QUERY, headers=headers,
                             timeout=30).json()
        out["grouped_id"] = done["id"]
        while "nextUri" in done:
            done = requests.get(done["nextUri"], headers=headers, timeout=30).json()
        out["grouped_state"] = done["stats"]["state"]
        driver.get(base + "/ui/#/query/" + out["grouped_id"])
        wait.until(lambda d: texts("#query-state") == ["FINISHED"]
                   and len(texts("#stages tbody td.stage-bytes")) >= 2
                   and all(texts("#stages tbody td.stage-bytes")))
        out["grouped_stage_bytes"] = texts("#stages tbody td.stage-bytes")
        driver.save_screenshot(f"{shots}/5-finished.png")
    elif mode == "login":
        password = sys.argv[4]
        driver.get(base + "/ui/")
        wait.until(lambda d: d.find_elements(By.ID, "login"))
        driver.save_screenshot(f"{shots}/6-login.png")
        driver.find_element(By.ID, "user").send_keys("ann")
        driver.find_element(By.ID, "password").send_keys(password + "-wrong")
        driver.find_element(By.ID, "login-button").click()
        wait.until(lambda d: text("#login-error"))
        out["wrong_password"] = text("#login-error")
        # The form comes back with the error, empty.
        driver.find_element(By.ID, "user").send_keys("ann")
        driver.find_element(By.ID, "password").send_keys(password)
        driver.find_element(By.ID, "login-button").click()
        wait.until(lambda d: len(texts("#nodes tbody tr")) >= 2)
        out["signed_in"] = text("#whoami")
        driver.save_screenshot(f"{shots}/7-signed-in.png")
except Exception:
    # What the page showed, for the one who reads the failure.
    driver.save_screenshot(f"{shots}/failure-{mode}.png")
    print(driver.execute_script("return document.body.innerText"), file=sys.stderr)
    raise
finally:
    driver.quit()

print(json.dumps(out))

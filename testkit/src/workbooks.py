# Test workbooks written by independent writers (XlsxWriter, xlwt, odfpy), for Ferry's
# Excel reader. XlsxWriter rather than openpyxl for .xlsx: it saves a formula's value
# with the formula (openpyxl saves none, as Excel would recompute it), and Ferry reads
# formulas as their saved values.
#   python3 workbooks.py OUT_DIR
import datetime as dt
import sys

import odf.opendocument
import odf.table
import odf.text
import xlsxwriter
import xlwt

out = sys.argv[1]

# orders.xlsx, sheet Q1: rows 2..15 (14 orders); row 14 holds text in `amount`
wb = xlsxwriter.Workbook(f"{out}/orders.xlsx")
day = wb.add_format({"num_format": "yyyy-mm-dd"})
stamp = wb.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
q1 = wb.add_worksheet("Q1")
q1.write_row(0, 0, ["id", "name", "amount", "day", "at", "double", "note"])
for i in range(1, 15):
    r = i  # zero-based row; the sheet's row i + 1
    q1.write_number(r, 0, i)
    q1.write_string(r, 1, "Zoë Ñandú" if i == 1 else f"client {i}")
    amount = i * 10 + 0.25
    if r + 1 == 14:
        q1.write_string(r, 2, "n/a")
    else:
        q1.write_number(r, 2, amount)
    q1.write_datetime(r, 3, dt.date(2024, 1, i), day)
    q1.write_datetime(r, 4, dt.datetime(2024, 1, i, 8, 30, 15), stamp)
    # the saved value is what Excel showed; Ferry reads it, never the formula
    q1.write_formula(r, 5, f"=C{r + 1}*2", None, amount * 2 if r + 1 != 14 else "#VALUE!")
# notes merged over rows 3..4 (value in G3, G4 empty); row 5's note left empty
q1.merge_range("G3:G4", "merged note", None)
q1.write_string(1, 6, "first")
wb.add_worksheet("Q2").write_row(0, 0, ["id", "city"])
q2 = wb.get_worksheet_by_name("Q2")
q2.write_row(1, 0, [1, "Genève"])
q2.write_row(2, 0, [2, "Zürich"])
wb.close()

# mac.xlsx: the 1904 date system (serial 0 is 1904-01-01)
wb = xlsxwriter.Workbook(f"{out}/mac.xlsx", {"date_1904": True})
day = wb.add_format({"num_format": "yyyy-mm-dd"})
s = wb.add_worksheet("dates")
s.write_row(0, 0, ["id", "day"])
s.write_number(1, 0, 1)
s.write_datetime(1, 1, dt.date(2024, 1, 31), day)
s.write_number(2, 0, 2)
s.write_datetime(2, 1, dt.date(1999, 12, 31), day)
wb.close()

# report.xlsx: a title in A1, the header on row 3 (B3:D3), data B4:D6, a total row 8
wb = xlsxwriter.Workbook(f"{out}/report.xlsx")
s = wb.add_worksheet("Report")
s.write_string(0, 0, "Quarterly report, do not edit")
s.write_row(2, 1, ["sku", "qty", "price"])
s.write_row(3, 1, ["A-1", 3, 9.99])
s.write_row(4, 1, ["B-2", 1, 120])
s.write_row(5, 1, ["C-3", 7, 0.5])
s.write_row(7, 1, ["total", 11])
s.write_string(3, 6, "notes outside the range")
wb.close()

# orders.xls (BIFF8, Excel 97-2003)
wb = xlwt.Workbook()
s = wb.add_sheet("Legacy")
date_style = xlwt.easyxf(num_format_str="YYYY-MM-DD")
for c, h in enumerate(["id", "name", "day"]):
    s.write(0, c, h)
s.write(1, 0, 1)
s.write(1, 1, "Zoë")
s.write(1, 2, dt.date(2024, 2, 29), date_style)
s.write(2, 0, 2)
s.write(2, 1, "Ana")
s.write(2, 2, dt.date(2023, 12, 1), date_style)
wb.save(f"{out}/orders.xls")

# orders.ods (OpenDocument)
doc = odf.opendocument.OpenDocumentSpreadsheet()
table = odf.table.Table(name="Feuille")


def row(*cells):
    tr = odf.table.TableRow()
    for kind, value in cells:
        if kind == "s":
            tc = odf.table.TableCell(valuetype="string")
            tc.addElement(odf.text.P(text=value))
        elif kind == "f":
            tc = odf.table.TableCell(valuetype="float", value=value)
            tc.addElement(odf.text.P(text=str(value)))
        else:
            tc = odf.table.TableCell(valuetype="date", datevalue=value)
            tc.addElement(odf.text.P(text=value))
        tr.addElement(tc)
    table.addElement(tr)


row(("s", "id"), ("s", "name"), ("s", "day"))
row(("f", 1), ("s", "Zoë"), ("d", "2024-03-01"))
row(("f", 2), ("s", "Léa"), ("d", "2024-03-02"))
doc.spreadsheet.addElement(table)
doc.save(f"{out}/orders.ods")

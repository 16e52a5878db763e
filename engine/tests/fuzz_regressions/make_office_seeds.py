# Writes the kept inputs of the `excel_read` and `archive_read` fuzz targets, made by
# independent writers (XlsxWriter, xlwt, odfpy, zipfile, tarfile). Each input is one flag
# byte (see fuzz/src/entries.rs) and the file. Run from this folder:
#   python3 make_office_seeds.py
import datetime as dt
import io
import tarfile
import zipfile

import odf.opendocument
import odf.table
import odf.text
import xlsxwriter
import xlwt


def put(path, flag, data):
    with open(path, "wb") as f:
        f.write(bytes([flag]) + data)


# excel_read: .xlsx (flag 0), .ods (1), .xls (2)
buf = io.BytesIO()
wb = xlsxwriter.Workbook(buf, {"in_memory": True})
day = wb.add_format({"num_format": "yyyy-mm-dd"})
s = wb.add_worksheet("Q1")
s.write_row(0, 0, ["id", "name", "day", "double"])
for i in range(1, 6):
    s.write_number(i, 0, i)
    s.write_string(i, 1, f"client {i}")
    s.write_datetime(i, 2, dt.date(2024, 1, i), day)
    s.write_formula(i, 3, f"=A{i + 1}*2", None, i * 2)
s.merge_range("E2:E3", "merged", None)
wb.add_worksheet("Q2").write_row(0, 0, ["a", "b"])
wb.close()
put("excel_read/ok-seed-orders.xlsx", 0, buf.getvalue())

doc = odf.opendocument.OpenDocumentSpreadsheet()
table = odf.table.Table(name="Feuille")
for cells in [["id", "name"], [1, "Zoë"], [2, "Léa"]]:
    tr = odf.table.TableRow()
    for v in cells:
        if isinstance(v, str):
            tc = odf.table.TableCell(valuetype="string")
        else:
            tc = odf.table.TableCell(valuetype="float", value=v)
        tc.addElement(odf.text.P(text=str(v)))
        tr.addElement(tc)
    table.addElement(tr)
doc.spreadsheet.addElement(table)
buf = io.BytesIO()
doc.write(buf)
put("excel_read/ok-seed-orders.ods", 1, buf.getvalue())

wb = xlwt.Workbook()
s = wb.add_sheet("Legacy")
for r, row in enumerate([["id", "name"], [1, "Zoë"], [2, "Ana"]]):
    for c, v in enumerate(row):
        s.write(r, c, v)
buf = io.BytesIO()
wb.save(buf)
put("excel_read/ok-seed-orders.xls", 2, buf.getvalue())
put("excel_read/err-csv-named-xlsx", 0, b"id,name\n1,a\n")

# archive_read: zip (flag 0), tar.gz (1)
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("export/a.csv", "id\n1\n2\n")
    z.writestr("export/b.csv", "id\n3\n")
put("archive_read/ok-seed-drop.zip", 0, buf.getvalue())
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w:gz") as t:
    data = b"id\n1\n2\n"
    info = tarfile.TarInfo("export/a.csv")
    info.size = len(data)
    t.addfile(info, io.BytesIO(data))
put("archive_read/ok-seed-drop.tar.gz", 1, buf.getvalue())
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("bomb.csv", "1\n" * 2_000_000)
put("archive_read/err-bomb.zip", 0, buf.getvalue())
put("archive_read/err-not-a-zip", 0, b"PK\x03\x04 not really")

"""The markdown renderer against hand-written reference text, for every event table, in both layouts.

Expected strings are typed out by hand from the reference renderer's rules (and from EHR-R1 prompts published
with the weights), never produced by the code under test. Patient values are invented.
"""

from __future__ import annotations

import pytest

from data_pipeline.events import Event, PatientTimeline
from data_pipeline.mimic.schema import EVENT_TABLES
from data_pipeline.render import (
    EVENT_DISPLAY,
    SILENT_FILE_NAMES,
    render_event,
    render_events,
    render_timeline,
)

T0 = "2150-03-01 08:00:00"


def ev(file_name: str, items: list[dict], starttime: str | None = T0) -> Event:
    return Event(file_name=file_name, starttime=starttime, endtime=starttime, hadm_id="20000001", items=items)


# (file_name, the single item, expected text)
SINGLE_ITEM_CASES = [
    ("patients", {"anchor_age": "61", "gender": "F", "dod": "nan"},
     "## Patient Demographics [None]\n- Anchor_Age: 61\n- Gender: F"),
    ("omr", {"result_name": "Blood Pressure", "result_value": "128/88"},
     "## Online Medical Record [2150-03-01 08:00:00]\n- Result_Name: Blood Pressure\n- Result_Value: 128/88"),
    ("pharmacy", {"medication": "Heparin", "proc_type": "Unit Dose", "status": "Active"},
     "## Pharmacy [2150-03-01 08:00:00]\n- Medication: Heparin\n- Proc_Type: Unit Dose\n- Status: Active"),
    ("prescriptions", {"drug": "Furosemide", "ATC Type": "furosemide", "prod_strength": "40mg Tab",
                       "dose_val_rx": "40", "dose_unit_rx": "mg", "ndc": "51079007320"},
     "## Prescriptions [2150-03-01 08:00:00]\n- Drug: Furosemide\n- Atc Type: furosemide\n"
     "- Prod_Strength: 40mg Tab\n- Dose_Val_Rx: 40\n- Dose_Unit_Rx: mg"),
    ("poe", {"order_type": "Lab", "order_subtype": "nan"},
     "## Provider Order Entry [2150-03-01 08:00:00]\n- Order_Type: Lab\n- Order_Subtype: nan"),
    ("procedures_icd", {"procedures": "Insertion of endotracheal airway", "CCS Type": "Other OR procedures"},
     "## Procedures on International Classification of Diseases [2150-03-01 08:00:00]\n"
     "- Procedures: Insertion of endotracheal airway\n- Ccs Type: Other OR procedures"),
    ("services", {"prev_service": "nan", "curr_service": "MED"},
     "## Services [2150-03-01 08:00:00]\n- Curr_Service: MED"),
    ("labevents", {"item_name": "Potassium", "valuenum": "5.9", "valueuom": "mEq/L", "ref_range_lower": "3.5",
                   "ref_range_upper": "5.1", "flag": "abnormal", "comments": "nan"},
     "## Labotary Test Events [2150-03-01 08:00:00]\n- Item_Name: Potassium\n- Valuenum: 5.9\n"
     "- Valueuom: mEq/L\n- Ref_Range_Lower: 3.5\n- Ref_Range_Upper: 5.1\n- Flag: abnormal\n- Comments: nan"),
    ("microbiologyevents", {"test_name": "Blood Culture, Routine", "dilution_text": "nan",
                            "interpretation": "nan", "comments": "nan", "ab_name": "nan"},
     "## Microbiology Test Events [2150-03-01 08:00:00]\n- Test_Name: Blood Culture, Routine\n"
     "- Dilution_Text: nan\n- Interpretation: nan\n- Comments: nan\n- Ab_Name: nan"),
    ("admissions", {"admission_type": "EW EMER.", "admission_location": "EMERGENCY ROOM",
                    "admission_info": "None"},
     "## Admissions [2150-03-01 08:00:00]\n- Admission_Type: EW EMER.\n"
     "- Admission_Location: EMERGENCY ROOM\n- Admission_Info: None"),
    ("transfers", {"eventtype": "admit", "careunit": "Medicine"},
     "## Transfers [2150-03-01 08:00:00]\n- Eventtype: admit\n- Careunit: Medicine"),
    ("emar", {"medication": "Acetaminophen", "event_txt": "Administered"},
     "## Electronic Medicine Administration Record [2150-03-01 08:00:00]\n- Medication: Acetaminophen\n"
     "- Event_Txt: Administered"),
    ("diagnoses_icd", {"diagnoses": "Acute kidney failure, unspecified", "CCS Type": "Acute renal failure"},
     "## Diagnoses on International Classification of Diseases [2150-03-01 08:00:00]\n"
     "- Diagnoses: Acute kidney failure, unspecified\n- Ccs Type: Acute renal failure"),
    ("radiology", {"note_type": "RR", "exam_name": "['CHEST (PA & LAT)']", "text": "No acute process.\n"},
     "## Radiology Examinations [2150-03-01 08:00:00]\n- Note_Type: RR\n- Exam_Name: ['CHEST (PA & LAT)']\n"
     "- Text: No acute process.\n"),
    ("discharge", {"note_type": "DS", "text": "Name: ___\nService: MEDICINE"},
     "## Discharge [2150-03-01 08:00:00]\n- Note_Type: DS\n- Text: Name: ___\nService: MEDICINE"),
    ("edstays", {"gender": "M", "race": "WHITE", "disposition": "ADMITTED"},
     "## EDstays [2150-03-01 08:00:00]\n- Gender: M\n- Race: WHITE"),
    ("triage", {"temperature": "99.0", "heartrate": "89.0", "resprate": "16.0", "o2sat": "99.0", "sbp": "174.0",
                "dbp": "79.0", "pain": "5", "acuity": "3.0", "chiefcomplaint": "Abdominal distention"},
     "## Triage [2150-03-01 08:00:00]\n- Temperature: 99.0\n- Heartrate: 89.0\n- Resprate: 16.0\n"
     "- O2Sat: 99.0\n- Sbp: 174.0\n- Dbp: 79.0\n- Pain: 5\n- Acuity: 3.0\n- Chiefcomplaint: Abdominal distention"),
    ("medrecon", {"name": "tamsulosin", "ATC Type": "tamsulosin"},
     "## Medrecon [2150-03-01 08:00:00]\n- Name: tamsulosin\n- Atc Type: tamsulosin"),
    ("pyxis", {"name": "Morphine"},
     "## Pyxis [2150-03-01 08:00:00]\n- Name: Morphine"),
    ("vitalsign", {"temperature": "nan", "heartrate": "41.0", "resprate": "16.0", "o2sat": "99.0", "sbp": "138.0",
                   "dbp": "56.0", "pain": "10", "rhythm": "Sinus Bradycardia"},
     "## Vitalsign [2150-03-01 08:00:00]\n- Temperature: nan\n- Heartrate: 41.0\n- Resprate: 16.0\n"
     "- O2Sat: 99.0\n- Sbp: 138.0\n- Dbp: 56.0\n- Pain: 10\n- Rhythm: Sinus Bradycardia"),
    ("diagnosis", {"icd_title": "CHEST PAIN NOS", "CCS Type": "Nonspecific chest pain"},
     "## ED Diagnoses on International Classification of Diseases [2150-03-01 08:00:00]\n"
     "- Icd_Title: CHEST PAIN NOS\n- Ccs Type: Nonspecific chest pain"),
    # No info keys: the reference emits the heading, "\n", and an empty body.
    ("icustays", {"first_careunit": "MICU", "los": "2.1"},
     "## ICUstays [2150-03-01 08:00:00]\n"),
    ("chartevents", {"item_name": "Heart Rate", "valuenum": "76.0", "valueuom": "bpm", "warning": "0.0"},
     "## Chart Events [2150-03-01 08:00:00]\n- Item_Name: Heart Rate\n- Valuenum: 76.0\n- Valueuom: bpm\n"
     "- Warning: 0.0"),
    ("ingredientevents", {"item_name": "Free Water", "amount": "250.0", "amountuom": "mL", "rate": "nan",
                          "rateuom": "nan"},
     "## Ingredient Events [2150-03-01 08:00:00]\n- Item_Name: Free Water\n- Amount: 250.0\n- Amountuom: mL\n"
     "- Rate: nan\n- Rateuom: nan"),
    ("datetimeevents", {"item_name": "Last dose of Heparin", "value": "2150-02-28 22:00:00"},
     "## Datetime Events [2150-03-01 08:00:00]\n- Item_Name: Last dose of Heparin"),
    ("procedureevents", {"item_name": "Arterial Line", "value": "1440.0", "valueuom": "min", "location": "Left Radial",
                         "locationcategory": "Invasive Arterial"},
     "## Procedure Events [2150-03-01 08:00:00]\n- Item_Name: Arterial Line\n- Value: 1440.0\n- Valueuom: min\n"
     "- Location: Left Radial\n- Locationcategory: Invasive Arterial"),
    ("inputevents", {"item_name": "NaCl 0.9%", "amount": "100.0", "amountuom": "ml", "rate": "50.0",
                     "rateuom": "mL/hour"},
     "## Input Events [2150-03-01 08:00:00]\n- Item_Name: NaCl 0.9%\n- Amount: 100.0\n- Amountuom: ml\n"
     "- Rate: 50.0\n- Rateuom: mL/hour"),
    ("outputevents", {"item_name": "Void", "value": "200.0", "valueuom": "ml"},
     "## Output Events [2150-03-01 08:00:00]\n- Item_Name: Void\n- Value: 200.0\n- Valueuom: ml"),
]

# (file_name, two items, expected text)
TABLE_CASES = [
    ("patients", [{"anchor_age": "61", "gender": "F"}, {"anchor_age": "62", "gender": "F"}],
     "## Patient Demographics [None]\n| Anchor_Age | Gender |\n| ------ | ------ |\n| 61 | F |\n| 62 | F |"),
    ("omr", [{"result_name": "BMI (kg/m2)", "result_value": "22.1"},
             {"result_name": "Weight (Lbs)", "result_value": "137"}],
     "## Online Medical Record [2150-03-01 08:00:00]\n| Result_Name | Result_Value |\n| ------ | ------ |\n"
     "| BMI (kg/m2) | 22.1 |\n| Weight (Lbs) | 137 |"),
    ("pharmacy", [{"medication": "Heparin", "proc_type": "Unit Dose", "status": "Active"},
                  {"medication": "Insulin", "proc_type": "Unit Dose", "status": "Discontinued"}],
     "## Pharmacy [2150-03-01 08:00:00]\n| Medication | Proc_Type | Status |\n| ------ | ------ | ------ |\n"
     "| Heparin | Unit Dose | Active |\n| Insulin | Unit Dose | Discontinued |"),
    ("prescriptions", [{"drug": "Furosemide", "ATC Type": "furosemide", "prod_strength": "40mg Tab",
                        "dose_val_rx": "40", "dose_unit_rx": "mg"},
                       {"drug": "Docusate", "ATC Type": "None", "prod_strength": "100mg Cap",
                        "dose_val_rx": "100", "dose_unit_rx": "mg"}],
     "## Prescriptions [2150-03-01 08:00:00]\n| Drug | Atc Type | Prod_Strength | Dose_Val_Rx | Dose_Unit_Rx |\n"
     "| ------ | ------ | ------ | ------ | ------ |\n| Furosemide | furosemide | 40mg Tab | 40 | mg |\n"
     "| Docusate | None | 100mg Cap | 100 | mg |"),
    ("poe", [{"order_type": "ADT orders", "order_subtype": "Admit"}, {"order_type": "Lab", "order_subtype": "nan"}],
     "## Provider Order Entry [2150-03-01 08:00:00]\n| Order_Type | Order_Subtype |\n| ------ | ------ |\n"
     "| ADT orders | Admit |\n| Lab | nan |"),
    ("procedures_icd", [{"procedures": "Venous catheterization", "CCS Type": "Other vascular catheterization"},
                        {"procedures": "Hemodialysis", "CCS Type": "Hemodialysis"}],
     "## Procedures on International Classification of Diseases [2150-03-01 08:00:00]\n| Procedures | Ccs Type |\n"
     "| ------ | ------ |\n| Venous catheterization | Other vascular catheterization |\n"
     "| Hemodialysis | Hemodialysis |"),
    ("services", [{"curr_service": "MED"}, {"curr_service": "SURG"}],
     "## Services [2150-03-01 08:00:00]\n| Curr_Service |\n| ------ |\n| MED |\n| SURG |"),
    ("labevents", [{"item_name": "PT", "valuenum": "12.7", "valueuom": "sec", "ref_range_lower": "9.4",
                    "ref_range_upper": "12.5", "flag": "abnormal", "comments": "nan"},
                   {"item_name": "Blue Top Hold", "valuenum": "nan", "valueuom": "nan", "ref_range_lower": "nan",
                    "ref_range_upper": "nan", "flag": "nan", "comments": "HOLD."}],
     "## Labotary Test Events [2150-03-01 08:00:00]\n"
     "| Item_Name | Valuenum | Valueuom | Ref_Range_Lower | Ref_Range_Upper | Flag | Comments |\n"
     "| ------ | ------ | ------ | ------ | ------ | ------ | ------ |\n"
     "| PT | 12.7 | sec | 9.4 | 12.5 | abnormal | nan |\n| Blue Top Hold | nan | nan | nan | nan | nan | HOLD. |"),
    ("microbiologyevents", [{"test_name": "URINE CULTURE", "dilution_text": "<=1", "interpretation": "S",
                             "comments": "nan", "ab_name": "NITROFURANTOIN"},
                            {"test_name": "URINE CULTURE", "dilution_text": "=>64", "interpretation": "R",
                             "comments": "nan", "ab_name": "AMPICILLIN"}],
     "## Microbiology Test Events [2150-03-01 08:00:00]\n"
     "| Test_Name | Dilution_Text | Interpretation | Comments | Ab_Name |\n| ------ | ------ | ------ | ------ | ------ |\n"
     "| URINE CULTURE | <=1 | S | nan | NITROFURANTOIN |\n| URINE CULTURE | =>64 | R | nan | AMPICILLIN |"),
    ("admissions", [{"admission_type": "URGENT", "admission_location": "TRANSFER FROM HOSPITAL",
                     "admission_info": "Fever"},
                    {"admission_type": "ELECTIVE", "admission_location": "PHYSICIAN REFERRAL",
                     "admission_info": "None"}],
     "## Admissions [2150-03-01 08:00:00]\n| Admission_Type | Admission_Location | Admission_Info |\n"
     "| ------ | ------ | ------ |\n| URGENT | TRANSFER FROM HOSPITAL | Fever |\n| ELECTIVE | PHYSICIAN REFERRAL | None |"),
    ("transfers", [{"eventtype": "ED", "careunit": "Emergency Department"},
                   {"eventtype": "discharge", "careunit": "nan"}],
     "## Transfers [2150-03-01 08:00:00]\n| Eventtype | Careunit |\n| ------ | ------ |\n"
     "| ED | Emergency Department |\n| discharge | nan |"),
    ("emar", [{"medication": "Heparin", "event_txt": "Administered"},
              {"medication": "Insulin", "event_txt": "Not Given"}],
     "## Electronic Medicine Administration Record [2150-03-01 08:00:00]\n| Medication | Event_Txt |\n"
     "| ------ | ------ |\n| Heparin | Administered |\n| Insulin | Not Given |"),
    ("diagnoses_icd", [{"diagnoses": "Sepsis, unspecified organism", "CCS Type": "Septicemia"},
                       {"diagnoses": "Essential hypertension", "CCS Type": "Essential hypertension"}],
     "## Diagnoses on International Classification of Diseases [None]\n| Diagnoses | Ccs Type |\n"
     "| ------ | ------ |\n| Sepsis, unspecified organism | Septicemia |\n"
     "| Essential hypertension | Essential hypertension |"),
    ("radiology", [{"note_type": "AR", "exam_name": "None", "text": "ADDENDUM\n"},
                   {"note_type": "RR", "exam_name": "['CT HEAD W/O CONTRAST']", "text": "No hemorrhage."}],
     "## Radiology Examinations [2150-03-01 08:00:00]\n| Note_Type | Exam_Name | Text |\n| ------ | ------ | ------ |\n"
     "| AR | None | ADDENDUM\n |\n| RR | ['CT HEAD W/O CONTRAST'] | No hemorrhage. |"),
    ("discharge", [{"note_type": "DS", "text": "first"}, {"note_type": "DS", "text": "second"}],
     "## Discharge [2150-03-01 08:00:00]\n| Note_Type | Text |\n| ------ | ------ |\n| DS | first |\n| DS | second |"),
    ("edstays", [{"gender": "M", "race": "WHITE"}, {"gender": "M", "race": "UNKNOWN"}],
     "## EDstays [2150-03-01 08:00:00]\n| Gender | Race |\n| ------ | ------ |\n| M | WHITE |\n| M | UNKNOWN |"),
    ("triage", [{"temperature": "98.6", "heartrate": "88.0", "resprate": "16.0", "o2sat": "95.0", "sbp": "170.0",
                 "dbp": "98.0", "pain": "0", "acuity": "2.0", "chiefcomplaint": "Dyspnea"},
                {"temperature": "nan", "heartrate": "nan", "resprate": "nan", "o2sat": "nan", "sbp": "nan",
                 "dbp": "nan", "pain": "nan", "acuity": "nan", "chiefcomplaint": "Transfer"}],
     "## Triage [2150-03-01 08:00:00]\n"
     "| Temperature | Heartrate | Resprate | O2Sat | Sbp | Dbp | Pain | Acuity | Chiefcomplaint |\n"
     "| ------ | ------ | ------ | ------ | ------ | ------ | ------ | ------ | ------ |\n"
     "| 98.6 | 88.0 | 16.0 | 95.0 | 170.0 | 98.0 | 0 | 2.0 | Dyspnea |\n"
     "| nan | nan | nan | nan | nan | nan | nan | nan | Transfer |"),
    ("medrecon", [{"name": "finasteride", "ATC Type": "nan"}, {"name": "multivitamin", "ATC Type": "None"}],
     "## Medrecon [2150-03-01 08:00:00]\n| Name | Atc Type |\n| ------ | ------ |\n| finasteride | nan |\n"
     "| multivitamin | None |"),
    ("pyxis", [{"name": "Morphine"}, {"name": "Ondansetron"}],
     "## Pyxis [2150-03-01 08:00:00]\n| Name |\n| ------ |\n| Morphine |\n| Ondansetron |"),
    ("vitalsign", [{"temperature": "98.6", "heartrate": "88.0", "resprate": "16.0", "o2sat": "95.0", "sbp": "170.0",
                    "dbp": "98.0", "pain": "0", "rhythm": "nan"},
                   {"temperature": "98.1", "heartrate": "80.0", "resprate": "18.0", "o2sat": "97.0", "sbp": "150.0",
                    "dbp": "90.0", "pain": "2", "rhythm": "Normal Sinus Rhythm"}],
     "## Vitalsign [2150-03-01 08:00:00]\n| Temperature | Heartrate | Resprate | O2Sat | Sbp | Dbp | Pain | Rhythm |\n"
     "| ------ | ------ | ------ | ------ | ------ | ------ | ------ | ------ |\n"
     "| 98.6 | 88.0 | 16.0 | 95.0 | 170.0 | 98.0 | 0 | nan |\n"
     "| 98.1 | 80.0 | 18.0 | 97.0 | 150.0 | 90.0 | 2 | Normal Sinus Rhythm |"),
    ("diagnosis", [{"icd_title": "CHEST PAIN NOS", "CCS Type": "Nonspecific chest pain"},
                   {"icd_title": "HYPERTENSION NOS", "CCS Type": "Essential hypertension"}],
     "## ED Diagnoses on International Classification of Diseases [2150-03-01 08:00:00]\n| Icd_Title | Ccs Type |\n"
     "| ------ | ------ |\n| CHEST PAIN NOS | Nonspecific chest pain |\n| HYPERTENSION NOS | Essential hypertension |"),
    # No info keys: every table row is "|  |" (an empty join between "| " and " |").
    ("icustays", [{"first_careunit": "MICU"}, {"first_careunit": "SICU"}],
     "## ICUstays [2150-03-01 08:00:00]\n|  |\n|  |\n|  |\n|  |"),
    ("chartevents", [{"item_name": "Heart Rate", "valuenum": "76.0", "valueuom": "bpm", "warning": "0.0"},
                     {"item_name": "Heart Rhythm", "valuenum": "nan", "valueuom": "nan", "warning": "0.0"}],
     "## Chart Events [2150-03-01 08:00:00]\n| Item_Name | Valuenum | Valueuom | Warning |\n"
     "| ------ | ------ | ------ | ------ |\n| Heart Rate | 76.0 | bpm | 0.0 |\n| Heart Rhythm | nan | nan | 0.0 |"),
    ("ingredientevents", [{"item_name": "Water", "amount": "100.0", "amountuom": "ml", "rate": "50.0",
                           "rateuom": "mL/hour"},
                          {"item_name": "Dextrose", "amount": "5.0", "amountuom": "grams", "rate": "2.5",
                           "rateuom": "grams/hour"}],
     "## Ingredient Events [2150-03-01 08:00:00]\n| Item_Name | Amount | Amountuom | Rate | Rateuom |\n"
     "| ------ | ------ | ------ | ------ | ------ |\n| Water | 100.0 | ml | 50.0 | mL/hour |\n"
     "| Dextrose | 5.0 | grams | 2.5 | grams/hour |"),
    ("datetimeevents", [{"item_name": "INV Line Insertion Date"}, {"item_name": "Cordis/Introducer Insertion Date"}],
     "## Datetime Events [2150-03-01 08:00:00]\n| Item_Name |\n| ------ |\n| INV Line Insertion Date |\n"
     "| Cordis/Introducer Insertion Date |"),
    ("procedureevents", [{"item_name": "Chest X-Ray", "value": "1.0", "valueuom": "None", "location": "nan",
                          "locationcategory": "nan"},
                         {"item_name": "Arterial Line", "value": "1440.0", "valueuom": "min",
                          "location": "Left Radial", "locationcategory": "Invasive Arterial"}],
     "## Procedure Events [2150-03-01 08:00:00]\n| Item_Name | Value | Valueuom | Location | Locationcategory |\n"
     "| ------ | ------ | ------ | ------ | ------ |\n| Chest X-Ray | 1.0 | None | nan | nan |\n"
     "| Arterial Line | 1440.0 | min | Left Radial | Invasive Arterial |"),
    ("inputevents", [{"item_name": "Propofol", "amount": "12.5", "amountuom": "mg", "rate": "25.0",
                      "rateuom": "mcg/kg/min"},
                     {"item_name": "NaCl 0.9%", "amount": "100.0", "amountuom": "ml", "rate": "nan", "rateuom": "nan"}],
     "## Input Events [2150-03-01 08:00:00]\n| Item_Name | Amount | Amountuom | Rate | Rateuom |\n"
     "| ------ | ------ | ------ | ------ | ------ |\n| Propofol | 12.5 | mg | 25.0 | mcg/kg/min |\n"
     "| NaCl 0.9% | 100.0 | ml | nan | nan |"),
    ("outputevents", [{"item_name": "Void", "value": "200.0", "valueuom": "ml"},
                      {"item_name": "Foley", "value": "55.0", "valueuom": "ml"}],
     "## Output Events [2150-03-01 08:00:00]\n| Item_Name | Value | Valueuom |\n| ------ | ------ | ------ |\n"
     "| Void | 200.0 | ml |\n| Foley | 55.0 | ml |"),
]

# The diagnoses_icd table case above is untimed, as the reference's diagnoses_icd rows are.
_UNTIMED = {"diagnoses_icd"}


def test_every_event_table_has_a_display_rule():
    assert set(EVENT_DISPLAY) | SILENT_FILE_NAMES == set(EVENT_TABLES)
    assert not set(EVENT_DISPLAY) & SILENT_FILE_NAMES


def test_every_displayed_table_has_both_cases():
    assert sorted(c[0] for c in SINGLE_ITEM_CASES) == sorted(EVENT_DISPLAY)
    assert sorted(c[0] for c in TABLE_CASES) == sorted(EVENT_DISPLAY)


@pytest.mark.parametrize("file_name,item,expected", SINGLE_ITEM_CASES, ids=[c[0] for c in SINGLE_ITEM_CASES])
def test_single_item_renders_as_bullets(file_name, item, expected):
    starttime = "2150-03-01 08:00:00" if file_name != "patients" else None
    assert render_event(ev(file_name, [item], starttime)) == expected


@pytest.mark.parametrize("file_name,items,expected", TABLE_CASES, ids=[c[0] for c in TABLE_CASES])
def test_several_items_render_as_table(file_name, items, expected):
    starttime = None if file_name in _UNTIMED else T0
    assert render_event(ev(file_name, items, starttime)) == expected


# Verbatim from the reference (ehr-r1-reference.md section 2). One item renders as bullets, so the example is the
# head of a longer lab run: the test renders such a run and checks the example is exactly its first four lines.
REFERENCE_INR_EXAMPLE = """## Labotary Test Events [2180-06-27 05:10:00]
| Item_Name | Valuenum | Valueuom | Ref_Range_Lower | Ref_Range_Upper | Flag | Comments |
| ------ | ------ | ------ | ------ | ------ | ------ | ------ |
| INR(PT) | 1.5 | nan | 0.9 | 1.1 | abnormal | nan |"""


def test_reference_inr_example_exactly():
    inr = {"labevent_id": "318", "itemid": "51237", "item_name": "INR(PT)", "value": "1.5", "valuenum": "1.5",
           "valueuom": "nan", "ref_range_lower": "0.9", "ref_range_upper": "1.1", "flag": "abnormal",
           "priority": "ROUTINE", "comments": "nan"}
    pt = {"item_name": "PT", "valuenum": "16.6", "valueuom": "sec", "ref_range_lower": "9.4",
          "ref_range_upper": "12.5", "flag": "abnormal", "comments": "nan"}
    text = render_event(ev("labevents", [inr, pt], "2180-06-27 05:10:00"))
    assert text == REFERENCE_INR_EXAMPLE + "\n| PT | 16.6 | sec | 9.4 | 12.5 | abnormal | nan |"


def test_reference_inr_single_row_is_bullets():
    inr = {"item_name": "INR(PT)", "valuenum": "1.5", "valueuom": "nan", "ref_range_lower": "0.9",
           "ref_range_upper": "1.1", "flag": "abnormal", "comments": "nan"}
    assert render_event(ev("labevents", [inr], "2180-06-27 05:10:00")) == (
        "## Labotary Test Events [2180-06-27 05:10:00]\n- Item_Name: INR(PT)\n- Valuenum: 1.5\n- Valueuom: nan\n"
        "- Ref_Range_Lower: 0.9\n- Ref_Range_Upper: 1.1\n- Flag: abnormal\n- Comments: nan")


@pytest.mark.parametrize("items,expected", [
    ([{"order_type": "Lab"}], "## Provider Order Entry [2150-03-01 08:00:00]\n- Order_Type: Lab\n- Order_Subtype: None"),
    ([{"order_type": "Lab"}, {"order_subtype": "Admit"}],
     "## Provider Order Entry [2150-03-01 08:00:00]\n| Order_Type | Order_Subtype |\n| ------ | ------ |\n"
     "| Lab | None |\n| None | Admit |"),
], ids=["bullet", "table"])
def test_missing_key_prints_none(items, expected):
    assert render_event(ev("poe", items)) == expected


@pytest.mark.parametrize("file_name,starttime,expected_heading", [
    ("patients", None, "## Patient Demographics [None]"),
    # The reference's patients rows never carry a time; a builder that sets one must not change the text.
    ("patients", "2150-01-01 00:00:00", "## Patient Demographics [None]"),
    ("microbiologyevents", None, "## Microbiology Test Events [None]"),
])
def test_missing_or_ignored_start_time_prints_none(file_name, starttime, expected_heading):
    item = {"anchor_age": "61", "gender": "F", "test_name": "x"}
    assert render_event(ev(file_name, [item], starttime)).split("\n", 1)[0] == expected_heading


@pytest.mark.parametrize("file_name", ["hcpcsevents", "drgcodes"])
def test_silent_tables_render_empty(file_name):
    assert render_event(ev(file_name, [{"drg_code": "871", "hcpcs_cd": "99223", "description": "SEPSIS"}])) == ""


def test_icustays_is_heading_only():
    assert render_event(ev("icustays", [{"stay_id": "30000001"}])) == "## ICUstays [2150-03-01 08:00:00]\n"


def test_dict_events_render_like_event_objects():
    event = ev("pyxis", [{"name": "Morphine"}])
    assert render_event(event.to_dict()) == render_event(event) == "## Pyxis [2150-03-01 08:00:00]\n- Name: Morphine"


def test_unknown_table_is_an_error_naming_it():
    with pytest.raises(ValueError, match="d_labitems"):
        render_event(ev("d_labitems", [{"label": "x"}]))


def _timeline() -> PatientTimeline:
    return PatientTimeline(10000001, [
        ev("patients", [{"anchor_age": "61", "gender": "F"}], None),
        ev("services", [{"curr_service": "MED"}]),
        ev("drgcodes", [{"drg_code": "871"}], None),
        ev("pyxis", [{"name": "Morphine"}], "2150-03-01 09:00:00"),
    ])


def test_render_events_keeps_empty_parts_like_sample_assembly():
    assert render_events(_timeline().events) == (
        "## Patient Demographics [None]\n- Anchor_Age: 61\n- Gender: F\n\n"
        "## Services [2150-03-01 08:00:00]\n- Curr_Service: MED\n\n"
        "\n\n"
        "## Pyxis [2150-03-01 09:00:00]\n- Name: Morphine")


def test_render_events_of_nothing_is_empty():
    assert render_events([]) == ""


def test_render_timeline_skips_silent_events_for_reading():
    assert render_timeline(_timeline()) == (
        "## Patient Demographics [None]\n- Anchor_Age: 61\n- Gender: F\n\n"
        "## Services [2150-03-01 08:00:00]\n- Curr_Service: MED\n\n"
        "## Pyxis [2150-03-01 09:00:00]\n- Name: Morphine")


def test_render_timeline_can_keep_silent_events():
    timeline = _timeline()
    assert render_timeline(timeline, keep_silent_events=True) == render_events(timeline.events)
    assert "MED\n\n\n\n## Pyxis" in render_timeline(timeline, keep_silent_events=True)
